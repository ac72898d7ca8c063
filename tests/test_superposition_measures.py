"""Measures of feature geometry on hand-made weight matrices whose answers are known exactly."""
import math

import numpy as np
import pytest
import torch

from mechinterp.superposition.measures import (dimensions_per_feature, feature_dimensionality,
                                               feature_gram, feature_norms, instance_loss,
                                               superposition)
from mechinterp.superposition.toy_models import ToyModel, ToyModelSpec


def polygon(k: int) -> torch.Tensor:
    """k unit vectors evenly spaced on the circle, as one instance: (1, k, 2)."""
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([angles.cos(), angles.sin()], dim=1)[None]


def tetrahedron() -> torch.Tensor:
    corners = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    return (corners / math.sqrt(3))[None]


@pytest.mark.parametrize("W, expected", [
    (polygon(5), 2 / 5),               # pentagon
    (polygon(3), 2 / 3),               # triangle
    (polygon(2), 1 / 2),               # antipodal pair in 2-D: each owns half of one direction
    (tetrahedron(), 3 / 4),
    (torch.tensor([[[1.0], [-1.0]]], dtype=torch.float64), 1 / 2),   # antipodal pair, m = 1
])
def test_feature_dimensionality_of_regular_arrangements(W, expected):
    assert torch.allclose(feature_dimensionality(W), torch.full(W.shape[:2], expected, dtype=W.dtype))


def test_orthogonal_features_own_a_dimension_and_missing_ones_count_zero():
    W = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])
    assert feature_norms(W).tolist() == [[1.0, 1.0, 0.0]]
    assert superposition(W).tolist() == [[0.0, 0.0, 0.0]]
    assert feature_dimensionality(W).tolist() == [[1.0, 1.0, 0.0]]
    assert dimensions_per_feature(W).tolist() == [1.0]


def test_measures_equal_their_formulas_on_random_weights():
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    for k in range(3):
        columns = W[k].numpy()              # row i is the paper's column W_i
        gram = np.array([[columns[i] @ columns[j] for j in range(6)] for i in range(6)])
        unit = columns / np.linalg.norm(columns, axis=1, keepdims=True)
        projections = np.array([[(unit[i] @ columns[j]) ** 2 for j in range(6)] for i in range(6)])
        norms_squared = (columns ** 2).sum(1)
        np.testing.assert_allclose(feature_gram(W)[k].numpy(), gram)
        np.testing.assert_allclose(superposition(W)[k].numpy(), projections.sum(1) - np.diag(projections))
        np.testing.assert_allclose(feature_dimensionality(W)[k].numpy(), norms_squared / projections.sum(1))
        np.testing.assert_allclose(float(dimensions_per_feature(W)[k]), 4 / norms_squared.sum())


def test_instance_loss_of_the_empty_model_is_the_features_second_moment():
    """W = 0, b = 0 predicts zero, so the loss is Σ I_i E[x_i²] / n with E[x²] = p/3."""
    probability = torch.tensor([1.0, 0.3])
    importance = torch.tensor([1.0, 0.5, 0.25])
    model = ToyModel(ToyModelSpec(3, 2, probability, importance))
    with torch.no_grad():
        model.W.zero_()
    expected = probability / 3 * importance.mean()
    torch.testing.assert_close(instance_loss(model, n_samples=200_000), expected, rtol=0.02, atol=0)
