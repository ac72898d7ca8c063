"""Unit matching across models and the layer-correspondence test."""
import numpy as np
import pytest
import torch

from mechinterp.universality.matching import (
    expected_layers, layer_correspondence_accuracy, match_units, shuffled_matching,
    unit_correlations)


def test_unit_correlations_match_numpy_corrcoef_over_images_and_positions():
    generator = torch.Generator().manual_seed(0)
    acts_a, acts_b = torch.randn(20, 3, 4, 4, generator=generator), torch.randn(20, 5, 4, 4, generator=generator)
    rows_a = acts_a.permute(1, 0, 2, 3).reshape(3, -1).numpy()
    rows_b = acts_b.permute(1, 0, 2, 3).reshape(5, -1).numpy()
    expected = np.corrcoef(np.concatenate([rows_a, rows_b]))[:3, 3:]
    assert unit_correlations(acts_a, acts_b).numpy() == pytest.approx(expected, abs=1e-10)


def test_matching_recovers_a_permuted_noisy_copy_and_beats_the_shuffled_baseline():
    generator = torch.Generator().manual_seed(1)
    acts_a = torch.relu(torch.randn(200, 12, 5, 5, generator=generator))
    permutation = torch.randperm(12, generator=generator)
    acts_b = 2.0 * acts_a[:, permutation] + 0.3 * torch.randn(200, 12, 5, 5, generator=generator)
    matching = match_units(unit_correlations(acts_a, acts_b))
    found = dict(matching.pairs)
    assert all(permutation[found[unit]] == unit for unit in range(12))
    assert matching.correlations.min() > 0.9
    baseline = shuffled_matching(acts_a, acts_b, seed=0)
    assert baseline.mean_correlation < 0.2


def test_dead_units_get_zero_correlation_and_different_map_sizes_are_pooled():
    acts_a = torch.rand(10, 2, 8, 8)
    acts_a[:, 1] = 0.0
    correlations = unit_correlations(acts_a, torch.rand(10, 3, 4, 4))
    assert correlations.shape == (2, 3)
    assert torch.all(correlations[1] == 0)


def test_layer_correspondence_accuracy():
    assert expected_layers(3, 3) == [0, 1, 2]
    assert expected_layers(3, 5) == [0, 2, 4]
    diagonal = torch.eye(4) + 0.1
    assert layer_correspondence_accuracy(diagonal) == 1.0
    shifted = torch.roll(torch.eye(4), 1, dims=1)
    assert layer_correspondence_accuracy(shifted) == 0.0
    assert layer_correspondence_accuracy(torch.tensor([[1.0, 0, 0], [0, 0, 1]]), [0, 2]) == 1.0
