"""First-layer filters and the ICA / sparse-coding filters of natural-image patches."""
import math

import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from mechinterp.universality.filters import (
    best_match_similarity, filter_orientedness, filters_as_images, first_layer_filters, ica_filters,
    sparse_coding_filters)


def camera_patches(size=8, count=2000, seed=0):
    """Grey patches of scikit-image's camera photograph, cut here (independent of mechinterp.data)."""
    photo = skimage.data.camera().astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, photo.shape[0] - size, count)
    cols = rng.integers(0, photo.shape[1] - size, count)
    return np.stack([photo[r:r + size, c:c + size] for r, c in zip(rows, cols)])[:, None]


def test_filter_orientedness_of_a_grating_and_a_blob():
    y, x = np.mgrid[-3:4, -3:4].astype(float)
    grating = np.cos(1.2 * x)[None, None]
    blob = np.exp(-(x ** 2 + y ** 2) / 4)[None, None]
    assert filter_orientedness(grating)[0] > 0.95
    assert filter_orientedness(blob)[0] < 0.05


def test_filter_orientedness_equals_the_structure_tensor_eigenvalues():
    filters = np.random.default_rng(4).standard_normal((6, 3, 5, 5))
    expected = []
    for filter_ in filters:          # float64 reference: 2x2 tensor per filter, numpy's eigvalsh
        gy, gx = np.gradient(filter_.mean(axis=0))
        tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
        smaller, larger = np.linalg.eigvalsh(tensor)
        expected.append(1 - smaller / larger)
    assert filter_orientedness(filters) == pytest.approx(np.array(expected), abs=1e-12)


def test_filters_as_images_put_zero_at_grey_and_each_filter_at_full_range():
    filters = np.random.default_rng(5).standard_normal((4, 3, 3, 3))
    filters[2] = 0.0
    images = filters_as_images(filters)
    assert images.shape == (4, 3, 3, 3)
    for index, filter_ in enumerate(filters):       # per filter: 0.5 + 0.5 w / max|w|, HWC
        scale = np.abs(filter_).max() + 1e-12
        assert images[index] == pytest.approx(0.5 + 0.5 * filter_.transpose(1, 2, 0) / scale)
    assert np.all(images[2] == 0.5)
    assert np.abs(images[[0, 1, 3]] - 0.5).reshape(3, -1).max(axis=1) == pytest.approx(0.5)
    grey = filters_as_images(filters[:, :1])
    assert np.all(grey[..., 0] == grey[..., 1]) and np.all(grey[..., 1] == grey[..., 2])


def test_filters_as_images_give_the_hand_computed_pixels():
    weight = np.zeros((2, 1, 2, 2))
    weight[0, 0] = [[2.0, -1.0], [0.0, 0.5]]
    weight[1, 0] = [[0.1, 0.0], [0.0, -0.1]]
    images = filters_as_images(weight)
    assert images.shape == (2, 2, 2, 3)                       # one channel drawn grey (3 equal)
    np.testing.assert_allclose(images[0, :, :, 0], [[1.0, 0.25], [0.5, 0.625]], atol=1e-9)
    np.testing.assert_allclose(images[1, :, :, 1], [[1.0, 0.5], [0.5, 0.0]], atol=1e-9)


def test_ica_and_sparse_coding_of_natural_patches_give_oriented_filters():
    patches = camera_patches()
    random_filters = np.random.default_rng(1).standard_normal((16, 1, 8, 8))
    baseline = filter_orientedness(random_filters).mean()
    ica = ica_filters(patches, n_components=16)
    sparse = sparse_coding_filters(patches, n_components=16, max_iter=5)
    assert ica.shape == sparse.shape == (16, 1, 8, 8)
    assert filter_orientedness(ica).mean() > baseline + 0.2
    assert filter_orientedness(sparse).mean() > baseline + 0.2


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


def test_a_grey_models_filters_match_grey_patches_and_colour_ones_are_a_clear_error():
    from mechinterp.data import natural_patches
    from mechinterp.universality.filters import best_match_similarity, first_layer_filters, ica_filters
    from tests.grey_cnn import grey_nested_cnn
    model = grey_nested_cnn()
    filters = first_layer_filters(model)                                # (4, 1, 3, 3)
    patches = natural_patches(3, 400, seed=0, channels=model.input_shape[0])
    assert patches.shape == (400, 1, 3, 3)
    best = best_match_similarity(filters, ica_filters(patches, n_components=6))
    assert best.shape == (4,) and np.all((0 <= best) & (best <= 1 + 1e-9))
    with pytest.raises(ValueError, match=r"filters are \(1, 3, 3\) .* reference filters are \(3, 3, 3\).*"
                                         r"natural_patches\(3, count, channels=1\)"):
        best_match_similarity(filters, ica_filters(natural_patches(3, 400, seed=0), n_components=6))
