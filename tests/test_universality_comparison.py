"""Comparing many layers at once (mechinterp.universality.comparison), on features whose answer is
known: a rotated copy of a layer is its perfect match, a reversed model matches only in the middle."""
import numpy as np
import pytest
import torch
from scipy.stats import ortho_group
from torch import nn

from mechinterp.universality.comparison import (correspondence_accuracy, module_outputs, pairwise,
                                                weighted_mean)
from mechinterp.representations.similarity import linear_cka
from tests.grey_cnn import grey_nested_cnn


def layered_features(seed=0, samples=120):
    """Three layers of increasing width, each a different random function of the same inputs."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, 6, generator=generator, dtype=torch.float64)
    return {f"layer{i}": torch.tanh(inputs @ torch.randn(6, width, generator=generator, dtype=torch.float64))
            ** (i + 1) for i, width in enumerate((8, 12, 16))}


def rotated(features, seed=1):
    return {name: x @ torch.tensor(ortho_group.rvs(x.shape[1], random_state=seed)) for name, x in features.items()}


def test_module_outputs_are_every_child_but_flatten():
    model = nn.Sequential()
    for name, module in [("conv", nn.Conv2d(1, 2, 3)), ("relu", nn.ReLU()), ("flat", nn.Flatten()),
                         ("fc", nn.Linear(2, 2))]:
        model.add_module(name, module)
    assert module_outputs(model) == ["conv", "relu", "fc"]


def test_module_outputs_of_a_nested_model_are_its_leaves_and_hold_its_representation_layers():
    from mechinterp.activations import layer_features, representation_layers
    model = grey_nested_cnn()
    layers = module_outputs(model)
    assert layers == ["features.0", "features.1", "features.2", "features.3", "features.4",
                      "features.6", "pool", "head"]
    features = layer_features(model, torch.rand(5, 1, 8, 8), layers)   # what the figure then reads
    assert all(features[layer].shape[0] == 5 for layer in representation_layers(model))


def test_module_outputs_include_a_described_block_after_its_layers():
    model = grey_nested_cnn()
    model.feature_layers = ["features"]
    assert module_outputs(model).index("features") == module_outputs(model).index("features.6") + 1


def test_rotated_copy_is_found_at_every_layer_and_a_reversed_one_only_in_the_middle():
    features = layered_features()
    copy = rotated(features)
    assert correspondence_accuracy([(features, copy)], ["linear_cka"]) == {"linear_cka": 1.0}
    reversed_copy = dict(zip(copy, reversed(list(copy.values()))))
    # each layer's best partner is its own rotation, at the mirrored depth: only layer1 is right
    assert correspondence_accuracy([(features, reversed_copy)], ["linear_cka"]) == {
        "linear_cka": pytest.approx(1 / 3)}


def test_pairwise_and_weighted_mean_match_direct_computation():
    features = {name: x for name, x in zip("ABC", layered_features().values())}
    found = pairwise(features, linear_cka)
    assert list(found) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert found["A", "C"] == pytest.approx(linear_cka(features["A"], features["C"]))
    assert weighted_mean([(1.0, 3), (0.0, 1)]) == pytest.approx(np.average([1, 0], weights=[3, 1]))
