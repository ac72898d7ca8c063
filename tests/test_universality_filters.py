"""First-layer filters and the ICA / sparse-coding filters of natural-image patches."""
import math

import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from mechinterp.universality.filters import (
    best_match_similarity, first_layer_filters, ica_filters, orientation_selectivity,
    sparse_coding_filters)


def camera_patches(size=8, count=2000, seed=0):
    """Grey patches of scikit-image's camera photograph, cut here (independent of mechinterp.data)."""
    photo = skimage.data.camera().astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, photo.shape[0] - size, count)
    cols = rng.integers(0, photo.shape[1] - size, count)
    return np.stack([photo[r:r + size, c:c + size] for r, c in zip(rows, cols)])[:, None]


def test_orientation_selectivity_of_a_grating_and_a_blob():
    y, x = np.mgrid[-3:4, -3:4].astype(float)
    grating = np.cos(1.2 * x)[None, None]
    blob = np.exp(-(x ** 2 + y ** 2) / 4)[None, None]
    assert orientation_selectivity(grating)[0] > 0.95
    assert orientation_selectivity(blob)[0] < 0.05


def test_ica_and_sparse_coding_of_natural_patches_give_oriented_filters():
    patches = camera_patches()
    random_filters = np.random.default_rng(1).standard_normal((16, 1, 8, 8))
    baseline = orientation_selectivity(random_filters).mean()
    ica = ica_filters(patches, n_components=16)
    sparse = sparse_coding_filters(patches, n_components=16, max_iter=5)
    assert ica.shape == sparse.shape == (16, 1, 8, 8)
    assert orientation_selectivity(ica).mean() > baseline + 0.2
    assert orientation_selectivity(sparse).mean() > baseline + 0.2


def test_best_match_similarity_is_one_for_a_filter_in_the_reference():
    reference = np.random.default_rng(2).standard_normal((5, 3, 4, 4))
    filters = np.stack([-2.0 * reference[3], np.random.default_rng(3).standard_normal((3, 4, 4))])
    similarity = best_match_similarity(filters, reference)
    assert similarity[0] == pytest.approx(1.0) and similarity[1] < 0.9


def test_first_layer_filters_of_a_cnn_and_an_mlp():
    cnn = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU())
    assert first_layer_filters(cnn).shape == (4, 3, 5, 5)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert first_layer_filters(mlp, input_shape=(1, 8, 8)).shape == (32, 1, 8, 8)
    with pytest.raises(ValueError, match="input_shape"):
        first_layer_filters(mlp)
    assert torch.equal(torch.as_tensor(first_layer_filters(cnn)), cnn[0].weight.detach().double())


def test_strongest_first_orders_filters_by_norm_as_python_sorts_them():
    from mechinterp.universality.filters import strongest_first
    filters = np.random.default_rng(3).normal(size=(12, 3, 5, 5)) * np.arange(1, 13)[::-1, None, None, None] ** 0.3
    filters = filters[np.random.default_rng(4).permutation(12)]
    expected = sorted(filters, key=lambda f: -math.sqrt(float((f ** 2).sum())))
    np.testing.assert_array_equal(strongest_first(filters), np.stack(expected))
