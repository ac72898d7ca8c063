"""Linear probes against chance and a shuffled-label control task."""
import numpy as np
import torch
from torch import nn

from mechinterp.representations.probes import probe, probe_layers


def planted(n=600, dims=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    labels = (x @ rng.standard_normal((dims, classes))).argmax(1)
    return x, labels


def test_probe_finds_planted_linear_structure_and_the_control_does_not():
    x, labels = planted()
    result = probe(x, labels)
    assert result.accuracy > 0.9
    assert result.chance < 0.5
    assert result.control_accuracy < result.chance + 0.12
    assert result.selectivity > 0.5


def test_probe_is_at_chance_on_labels_unrelated_to_the_features():
    x, _ = planted(seed=1)
    unrelated = np.random.default_rng(2).integers(0, 3, len(x))
    result = probe(x, unrelated)
    assert abs(result.accuracy - 1 / 3) < 0.12
    assert result.train_accuracy > result.accuracy      # what it fits is memorised, not found


def test_probe_layers_reads_every_layer_through_hooks():
    x, labels = planted(n=300, dims=8)
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(8, 16))
    model.add_module("relu1", nn.ReLU())
    model.add_module("fc2", nn.Linear(16, 3))
    results = probe_layers(model.eval(), torch.tensor(x, dtype=torch.float32), labels,
                           ["fc1", "relu1", "fc2"])
    assert list(results) == ["fc1", "relu1", "fc2"]
    assert results["fc1"].accuracy > 0.85          # a linear map keeps linear structure
    assert set(results["fc2"].as_dict()) >= {"accuracy", "chance", "control_accuracy", "selectivity"}
