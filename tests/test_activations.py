"""mechinterp.activations: features and vectors of a layer, checked against running the layers of a
Sequential by hand (no hooks), against the pooling written out in float64, and on a hand-built
conv net whose activations are known."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.activations import (activation_stream, as_features, batched_activations,
                                    layer_features, layer_vectors, numpy_rows, predictions,
                                    representation_layers, stream_layer_features, to_vectors,
                                    unit_scores)


@pytest.fixture(scope="module")
def convnet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(5 * 3 * 3, 3)).eval()
    return model, torch.randn(23, 3, 8, 8)


def by_hand(model, images, upto):
    """The output of model[upto] computed by calling the first upto + 1 modules in turn."""
    with torch.no_grad():
        return model[:upto + 1](images)


def test_layer_features_equal_the_layers_run_by_hand(convnet):
    model, images = convnet
    features = layer_features(model, images, ["1", "3", "5"], batch_size=5)
    assert torch.allclose(features["1"], by_hand(model, images, 1).flatten(1), atol=1e-6)
    assert torch.allclose(features["3"], by_hand(model, images, 3).flatten(1), atol=1e-6)
    assert torch.allclose(features["5"], by_hand(model, images, 5), atol=1e-6)
    assert features["1"].device.type == "cpu" and features["1"].dtype == torch.float32


def test_pooling_matches_the_float64_formulas(convnet):
    model, images = convnet
    maps = by_hand(model, images, 1).double()                     # (N, 4, 8, 8)
    assert torch.allclose(as_features(maps, "mean"), maps.sum((2, 3)) / 64)
    assert torch.equal(as_features(maps, "max"), maps.flatten(2).max(2).values)
    blocks = maps.reshape(len(maps), 4, 2, 4, 2, 4).mean((3, 5))   # 4x4 blocks -> 2x2
    assert torch.allclose(as_features(maps, 2), blocks.flatten(1))
    with pytest.raises(ValueError, match="pool must be"):
        as_features(maps, "median")


def test_streamed_batches_cover_every_image_once(convnet):
    model, images = convnet
    batches = list(stream_layer_features(model, images, ["3"], batch_size=10, pool="mean"))
    assert [len(b["3"]) for b in batches] == [10, 10, 3]
    expected = by_hand(model, images, 3).mean((2, 3))
    assert torch.allclose(torch.cat([b["3"] for b in batches]), expected, atol=1e-6)
    raw = list(batched_activations(model, images, ["1"], batch_size=10))
    assert torch.allclose(torch.cat([b["1"] for b in raw]), by_hand(model, images, 1), atol=1e-6)


def test_numpy_rows_flatten_anything_to_float64():
    maps = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2).requires_grad_(True)
    rows = numpy_rows(maps)
    assert rows.dtype == np.float64 and rows.shape == (2, 12)
    assert np.array_equal(rows[1], np.arange(12, 24))
    assert np.array_equal(numpy_rows(np.ones((3, 2, 2), dtype=np.float32)), np.ones((3, 4)))


def test_predictions_are_the_argmax_of_the_logits(convnet):
    model, images = convnet
    with torch.no_grad():
        assert torch.equal(predictions(model, images, batch_size=4), model(images).argmax(1))


def test_representation_layers_in_depth_order(convnet):
    model, _ = convnet
    assert representation_layers(model) == ["1", "3", "5"]        # ReLUs, then the classifier
    assert representation_layers(model, include_classifier=False) == ["1", "3"]
    described = nn.Sequential(nn.Linear(2, 2))
    described.feature_layers, described.classifier_layer = ["a", "b"], "c"
    assert representation_layers(described) == ["a", "b", "c"]


def hand_built_conv() -> nn.Sequential:
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU()).eval()


def test_conv_unit_scores_are_the_maximum_over_positions():
    images = torch.randn(5, 1, 4, 4)
    scores = unit_scores(hand_built_conv(), "1", images, batch_size=2)
    expected = torch.stack([images.relu().amax(dim=(1, 2, 3)), (-images).relu().amax(dim=(1, 2, 3))], 1)
    torch.testing.assert_close(scores, expected)
    doubled = unit_scores(hand_built_conv(), "1", images, vector_map=lambda v: 2 * v)
    torch.testing.assert_close(doubled, 2 * expected)


def test_vectors_round_trip_and_stream_covers_every_position_once_per_epoch():
    activation = torch.randn(3, 4, 2, 5)
    vectors, restore = to_vectors(activation)
    assert vectors.shape == (30, 4) and torch.equal(restore(vectors), activation)
    assert torch.equal(vectors[7], activation[0, :, 1, 2])
    images = torch.randn(6, 1, 3, 3)
    model = hand_built_conv()
    stream = activation_stream(model, "1", images, images_per_batch=4, seed=0)
    epoch = torch.cat([next(stream), next(stream)])
    every = layer_vectors(model, "1", images)
    assert epoch.shape == every.shape
    assert sorted(map(tuple, epoch.tolist())) == sorted(map(tuple, every.tolist()))
