"""Geometry of activations: spectra, intrinsic dimension, embeddings, clustering, paths."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.representations.geometry import (
    clustering_purity, components_for_variance, embed_2d, interpolation_path, participation_ratio,
    path_length, pca_spectrum, purity, twonn_dimension)


def on_subspace(n, intrinsic, ambient, seed=0):
    """Uniform points on an `intrinsic`-dimensional linear subspace of R^ambient."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, intrinsic)))
    return rng.uniform(-1, 1, (n, intrinsic)) @ basis.T


def test_participation_ratio_counts_equal_variances():
    assert participation_ratio(np.ones(7)) == pytest.approx(7.0)
    assert participation_ratio([1.0, 0, 0]) == pytest.approx(1.0)
    spectrum = pca_spectrum(on_subspace(500, 3, 12))
    assert spectrum.sum() == pytest.approx(1.0)
    assert components_for_variance(spectrum, 0.99) == 3


def flat_torus(n, intrinsic, ambient, seed=0):
    """Uniform points on the flat torus (S^1)^intrinsic, rotated into R^ambient: a manifold of
    that dimension with no boundary (a cube's faces make TwoNN read low, 4.5 to 4.8 for d=5)."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, (n, intrinsic))
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, 2 * intrinsic)))
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1) @ basis.T


@pytest.mark.parametrize("intrinsic, seed", [(2, 0), (5, 0), (5, 1), (5, 2)])
def test_twonn_recovers_the_dimension_of_a_flat_manifold(intrinsic, seed):
    # 4000 points: the estimate's spread over seeds is about 0.1 at d=5 (5.0 to 5.24 in six seeds)
    estimate = twonn_dimension(flat_torus(4000, intrinsic, 20, seed))
    assert abs(estimate - intrinsic) < 0.3          # 4 and 6 are both rejected for d=5


def test_twonn_sees_a_curved_one_dimensional_manifold_as_one_dimensional():
    angle = np.random.default_rng(1).uniform(0, 2 * np.pi, 1000)
    spiral = np.stack([np.cos(angle), np.sin(angle), np.cos(3 * angle), np.sin(3 * angle)], 1)
    assert twonn_dimension(spiral) == pytest.approx(1.0, rel=0.2)
    assert participation_ratio(pca_spectrum(spiral)) > 3     # PCA calls it four-dimensional


def blobs(separation, n_per_class=40, seed=0, dims=4):
    """Three unit-variance Gaussian blobs in R^dims whose centres are `separation` sigma apart
    (pairwise): at 5 sigma the best possible classifier errs on about 0.6% of points."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, dims) * separation / np.sqrt(2)
    features = np.concatenate([c + rng.standard_normal((n_per_class, dims)) for c in centres])
    return features, np.repeat(np.arange(3), n_per_class)


def test_purity_equals_the_contingency_table_formula():
    from sklearn.metrics.cluster import contingency_matrix
    rng = np.random.default_rng(3)
    clusters, labels = rng.integers(0, 4, 200), rng.integers(0, 3, 200)
    expected = contingency_matrix(labels, clusters).max(axis=0).sum() / 200
    assert purity(clusters, labels) == pytest.approx(expected)
    assert purity([0, 0, 1, 1], [2, 2, 3, 3]) == 1.0
    assert purity([0, 0, 0, 0], [1, 1, 2, 2]) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustering_finds_blobs_5_sigma_apart_and_nothing_in_one_blob(seed):
    features, labels = blobs(5.0, seed=seed)
    score, clusters = clustering_purity(features, labels, n_clusters=3)
    assert score >= 0.95 and len(clusters) == len(labels)
    same, labels = blobs(0.0, seed=seed)             # three labels on one blob: chance is 1/3
    assert clustering_purity(same, labels, n_clusters=3)[0] < 0.5


@pytest.mark.parametrize("method", ["pca", "ica", "kpca", "tsne"])
def test_every_embedding_keeps_separated_classes_apart(method):
    features, labels = blobs(5.0, n_per_class=20)
    embedding = embed_2d(features, method)
    assert embedding.shape == (len(features), 2)
    score, _ = clustering_purity(embedding, labels, n_clusters=3)
    assert score > 0.9
    same, labels = blobs(0.0, n_per_class=20)       # and invents no classes in one blob
    assert clustering_purity(embed_2d(same, method), labels, n_clusters=3)[0] < 0.55


def test_interpolation_path_starts_and_ends_at_the_endpoint_classes():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc1", nn.Linear(4, 8))
    model.add_module("relu1", nn.ReLU())
    model.add_module("fc2", nn.Linear(8, 3))
    model.eval()
    start, end = torch.randn(1, 2, 2), torch.randn(1, 2, 2)
    path = interpolation_path(model, start, end, steps=11, layer="relu1")
    with torch.no_grad():
        ends = model(torch.stack([start, end])).argmax(1).tolist()
    assert [path.classes[0], path.classes[-1]] == ends
    assert torch.allclose(path.images[5], (start + end) / 2)
    assert path.features.shape == (11, 8)
    travelled, straight = path_length(path.features)
    assert travelled >= straight - 1e-12
    with pytest.raises(ValueError, match="unknown embedding"):
        embed_2d(np.zeros((5, 3)), "umap")


def test_path_length_of_a_hand_drawn_polyline():
    corner = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]])          # 5 up, 4 back down
    assert path_length(corner) == pytest.approx((9.0, 3.0))
    straight = np.linspace([0.0, 0.0, 0.0], [1.0, 2.0, 2.0], 7)        # flat: length = distance
    travelled, distance = path_length(straight)
    assert travelled == pytest.approx(3.0) and distance == pytest.approx(3.0)
