"""Do two models learn the same units? Unit matching and the layer-correspondence test.

Unit matching (Li et al. 2016, "Convergent learning"): correlate every unit of model A's layer with
every unit of model B's layer over the same inputs (conv channels: every image and position is a
sample), pair units one-to-one with an optimal assignment (Hungarian algorithm, scipy), and compare
the matched correlations with the same procedure after shuffling which image B saw.

    correlations = unit_correlations(acts_a, acts_b)          # (units_a, units_b) Pearson r
    matching = match_units(correlations)                      # UnitMatching(pairs, correlations)
    baseline = shuffled_matching(acts_a, acts_b, seed=0)      # B's images permuted

Layer correspondence (Kornblith et al. 2019): for each layer of A, is the most similar layer of B
the one at the same depth? Reported as the fraction of layers identified correctly.

    layer_correspondence_accuracy(similarity)                 # similarity: (layers_a, layers_b)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mechinterp.activations import to_vectors


def unit_samples(activation: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N*H*W, C) or (N, D) -> (N, D): one row per sample, one column per unit."""
    if activation.ndim == 4:
        return to_vectors(activation)[0]
    return activation.reshape(activation.shape[0], -1)


def _matching_shapes(acts_a: torch.Tensor, acts_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv maps of different sizes are compared after average-pooling both to the smaller size."""
    if acts_a.ndim == 4 and acts_b.ndim == 4 and acts_a.shape[2:] != acts_b.shape[2:]:
        size = tuple(min(a, b) for a, b in zip(acts_a.shape[2:], acts_b.shape[2:]))
        acts_a = torch.nn.functional.adaptive_avg_pool2d(acts_a, size)
        acts_b = torch.nn.functional.adaptive_avg_pool2d(acts_b, size)
    if (acts_a.ndim == 4) != (acts_b.ndim == 4):
        acts_a = acts_a.mean(dim=(2, 3)) if acts_a.ndim == 4 else acts_a
        acts_b = acts_b.mean(dim=(2, 3)) if acts_b.ndim == 4 else acts_b
    return acts_a, acts_b


def unit_correlations(acts_a: torch.Tensor, acts_b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every unit of A with every unit of B, float64 (units_a, units_b).
    Dead units (zero variance) get correlation 0."""
    acts_a, acts_b = _matching_shapes(acts_a, acts_b)
    a = unit_samples(acts_a).to(torch.float64)
    b = unit_samples(acts_b).to(torch.float64)
    a, b = a - a.mean(0), b - b.mean(0)
    std_a, std_b = a.norm(dim=0), b.norm(dim=0)
    correlations = (a.T @ b) / torch.outer(std_a, std_b).clamp_min(1e-12)
    return correlations * (std_a[:, None] > 1e-12) * (std_b[None, :] > 1e-12)


@dataclass
class UnitMatching:
    pairs: list[tuple[int, int]]       # (unit of A, unit of B), one-to-one
    correlations: np.ndarray           # correlation of each pair, same order as pairs
    best_match: np.ndarray             # for each unit of A, its highest correlation with any B unit

    @property
    def mean_correlation(self) -> float:
        return float(self.correlations.mean())


def match_units(correlations: torch.Tensor) -> UnitMatching:
    """One-to-one pairing of units that maximises the summed correlation (Hungarian algorithm)."""
    matrix = torch.as_tensor(correlations).cpu().numpy()
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    order = np.argsort(-matrix[rows, cols])
    rows, cols = rows[order], cols[order]
    return UnitMatching(pairs=list(zip(rows.tolist(), cols.tolist())),
                        correlations=matrix[rows, cols], best_match=matrix.max(axis=1))


def shuffled_matching(acts_a: torch.Tensor, acts_b: torch.Tensor, seed: int = 0) -> UnitMatching:
    """The same matching after permuting B's images: what optimal assignment finds by chance."""
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(len(acts_b), generator=generator).to(acts_b.device)
    return match_units(unit_correlations(acts_a, acts_b[permutation]))


def expected_layers(count_a: int, count_b: int) -> list[int]:
    """The layer of B at the same relative depth as each layer of A (identity for equal counts)."""
    if count_a == 1:
        return [count_b - 1]
    return [round(i * (count_b - 1) / (count_a - 1)) for i in range(count_a)]


def layer_correspondence_accuracy(similarity, expected: list[int] | None = None) -> float:
    """Fraction of A's layers whose most similar layer of B is the expected one (same depth)."""
    matrix = torch.as_tensor(similarity)
    expected = expected if expected is not None else expected_layers(*matrix.shape)
    found = matrix.argmax(dim=1).tolist()
    return float(np.mean([f == e for f, e in zip(found, expected)]))
