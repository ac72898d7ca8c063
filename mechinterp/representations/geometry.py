"""The shape of a layer's activations: dimension, 2-D maps, clusters, and paths between inputs.

    spectrum = pca_spectrum(features)               # explained-variance ratios, descending
    participation_ratio(spectrum)                   # (sum l)^2 / sum l^2: effective linear dimension
    twonn_dimension(features)                       # Facco et al. 2017: nonlinear intrinsic dimension
    embed_2d(features, "tsne")                      # also "pca", "ica", "kpca" (scikit-learn)
    clustering_purity(features, labels, 8)          # k-means clusters vs labels (activation atlas)
    path = interpolation_path(model, x0, x1, steps=21, layer="relu2")   # class along the segment

A flat, low-dimensional manifold lets a straight path stay on it; a curved one makes a short step
jump to a different class, which interpolation_path shows as class switches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FastICA, KernelPCA
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

from mechinterp.activations import numpy_rows
from mechinterp.device import model_device
from mechinterp.hooks import capture
from mechinterp.small_fits import small_blas


def pca_spectrum(features) -> np.ndarray:
    """Explained-variance ratio of every principal component, descending."""
    rows = numpy_rows(features)
    with small_blas():
        return PCA(n_components=min(rows.shape)).fit(rows).explained_variance_ratio_


def participation_ratio(spectrum) -> float:
    """(sum of eigenvalues)^2 / sum of squared eigenvalues: D for D equal variances, 1 for one."""
    spectrum = np.asarray(spectrum, dtype=np.float64)
    return float(spectrum.sum() ** 2 / (spectrum ** 2).sum())


def components_for_variance(spectrum, fraction: float = 0.9) -> int:
    """How many principal components explain `fraction` of the variance."""
    return int(np.searchsorted(np.cumsum(spectrum), fraction) + 1)


def twonn_dimension(features, discard_fraction: float = 0.1) -> float:
    """TwoNN estimate (Facco et al. 2017). On a d-dimensional manifold the ratio mu = r2 / r1 of
    each point's two nearest-neighbour distances has CDF F(mu) = 1 - mu^-d, so d is the slope of
    -log(1 - F) against log(mu) through the origin, fitted without the largest 10% of mu (which
    outliers and density changes dominate). Duplicate points are removed first."""
    rows = np.unique(numpy_rows(features), axis=0)
    with small_blas():
        distances, _ = NearestNeighbors(n_neighbors=3).fit(rows).kneighbors(rows)
    mu = np.sort(distances[:, 2] / np.maximum(distances[:, 1], 1e-12))
    empirical_cdf = np.arange(1, len(mu) + 1) / len(mu)
    kept = slice(0, int(len(mu) * (1 - discard_fraction)))
    x, y = np.log(mu[kept]), -np.log(1 - empirical_cdf[kept])
    return float((x * y).sum() / (x * x).sum())


def embed_2d(features, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, 2) embedding by PCA, ICA, RBF kernel PCA or t-SNE (features standardised first)."""
    with small_blas():
        return _embed_2d(numpy_rows(features), method, seed)


def _embed_2d(rows: np.ndarray, method: str, seed: int) -> np.ndarray:
    rows = (rows - rows.mean(0)) / (rows.std(0) + 1e-8)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(rows)
    if method == "ica":
        return FastICA(n_components=2, random_state=seed, max_iter=500).fit_transform(rows)
    if method == "kpca":
        gamma = 1.0 / rows.shape[1]
        return KernelPCA(n_components=2, kernel="rbf", gamma=gamma).fit_transform(rows)
    if method == "tsne":
        start = PCA(n_components=min(50, *rows.shape), random_state=seed).fit_transform(rows)
        perplexity = min(30.0, (len(rows) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca",
                    random_state=seed).fit_transform(start)
    raise ValueError(f"unknown embedding {method!r}: use pca, ica, kpca or tsne")


def purity(clusters, labels) -> float:
    """Fraction of points whose cluster's most common label is their own label."""
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    majority = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
    return float(majority / len(labels))


def clustering_purity(features, labels, n_clusters: int, seed: int = 0) -> tuple[float, np.ndarray]:
    """k-means on standardised features; (purity against the labels, cluster of each point)."""
    rows = numpy_rows(features)
    rows = (rows - rows.mean(0)) / (rows.std(0) + 1e-8)
    with small_blas():
        clusters = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(rows)
    return purity(clusters, labels), clusters


@dataclass
class InterpolationPath:
    alphas: np.ndarray          # (steps,) position along the segment, 0 = start, 1 = end
    images: torch.Tensor        # (steps, *input shape)
    classes: np.ndarray         # predicted class at each step
    probabilities: np.ndarray   # (steps, classes) softmax
    features: np.ndarray | None  # (steps, D) activations of `layer` along the path, if asked

    @property
    def class_switches(self) -> int:
        return int((np.diff(self.classes) != 0).sum())


def interpolation_path(model, start: torch.Tensor, end: torch.Tensor, steps: int = 21,
                       layer: str | None = None) -> InterpolationPath:
    """Straight line (1 - a) start + a end in input space: the class (and activations) along it."""
    device = model_device(model)
    alphas = torch.linspace(0, 1, steps, dtype=start.dtype)
    weights = alphas.reshape(-1, *[1] * start.ndim)
    images = (1 - weights) * start[None] + weights * end[None]
    with torch.no_grad(), capture(model, [layer] if layer else []) as acts:
        logits = model(images.to(device)).cpu()
    features = acts[layer].reshape(steps, -1).double().cpu().numpy() if layer else None
    probabilities = logits.softmax(1).double().numpy()
    return InterpolationPath(alphas.numpy(), images, probabilities.argmax(1), probabilities, features)


def path_length(features: np.ndarray) -> tuple[float, float]:
    """(length of the polyline through the path's activations, straight distance of its ends):
    their ratio is 1 on a flat map and grows as the representation bends the path."""
    steps = np.linalg.norm(np.diff(features, axis=0), axis=1)
    return float(steps.sum()), float(np.linalg.norm(features[-1] - features[0]))
