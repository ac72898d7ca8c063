"""Comparing many layers of many models at once, built on similarity and matching.

    layers = module_outputs(model)                        # every top-level module but Flatten
    accuracy = correspondence_accuracy([(feats_a, feats_b)], ["linear_cka", "svcca"])
    # {measure: fraction of layers, of either model, whose best match is at the same depth}
    scores = pairwise({"A": x, "B": y, "C": z}, mutual_knn_alignment)   # {("A", "B"): ..., ...}

correspondence_accuracy asks Kornblith et al.'s question both ways (each layer of A looks for its
partner in B, and each layer of B in A) and weights each direction by its number of layers.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from torch import nn


def module_outputs(model: nn.Module) -> list[str]:
    """Every top-level module whose output is a representation: all children but Flatten."""
    return [name for name, module in model.named_children() if not isinstance(module, nn.Flatten)]


def correspondence_accuracy(feature_pairs, measures: Sequence[str]) -> dict[str, float]:
    """{measure: layer-correspondence accuracy} over pairs of {layer: features} dicts, each layer
    of either model asking whether its most similar layer in the other sits at the same depth."""
    from mechinterp.universality.matching import layer_correspondence_accuracy
    from mechinterp.representations.similarity import similarity_matrices
    hits: dict[str, list[tuple[float, int]]] = {measure: [] for measure in measures}
    for features_a, features_b in feature_pairs:
        for measure, matrix in similarity_matrices(features_a, features_b, list(measures)).items():
            hits[measure].append((layer_correspondence_accuracy(matrix), matrix.shape[0]))
            hits[measure].append((layer_correspondence_accuracy(matrix.T), matrix.shape[1]))
    return {measure: weighted_mean(values) for measure, values in hits.items()}


def weighted_mean(values_and_weights: Sequence[tuple[float, float]]) -> float:
    values, weights = zip(*values_and_weights)
    return float(np.average(values, weights=weights))


def pairwise(features: dict, measure: Callable) -> dict[tuple[str, str], float]:
    """measure(features[a], features[b]) for every unordered pair of names, in insertion order."""
    names = list(features)
    return {(a, b): float(measure(features[a], features[b]))
            for i, a in enumerate(names) for b in names[i + 1:]}
