"""Comparing many layers of many models at once, built on similarity and matching.

    layers = module_outputs(model)          # every layer's output, in forward order (see below)
    accuracy = correspondence_accuracy([(feats_a, feats_b)], ["linear_cka", "svcca"])
    # {measure: fraction of layers, of either model, whose best match is at the same depth}
    scores = pairwise({"A": x, "B": y, "C": z}, mutual_knn_alignment)   # {("A", "B"): ..., ...}

module_outputs are the names a user would give a layer, on flat and nested models alike (an
nn.Sequential's `features.0`, torchvision's `layer1.0.conv1`): every leaf module of one eval-mode
forward pass, in the order models.layers.layer_table walks them, but those whose output repeats
their input's values (Flatten, Dropout, Identity) or that run more than once (a reused ReLU: which
call?), plus the model's representation_layers (feature_layers may name a block), so features read
at module_outputs hold every representation layer too.

correspondence_accuracy asks Kornblith et al.'s question both ways (each layer of A looks for its
partner in B, and each layer of B in A) and weights each direction by its number of layers.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from torch import nn


SAME_VALUES = (nn.Flatten, nn.Dropout, nn.Identity)   # in eval mode: their input, reshaped at most


def module_outputs(model: nn.Module, input_shape=None) -> list[str]:
    """Every module whose output is a representation, in forward order (the module docstring):
    the leaves but Flatten, Dropout, Identity and reused ones, and the representation_layers."""
    from mechinterp.activations import representation_layers
    from mechinterp.models.layers import layer_table, read_once
    described, modules = set(representation_layers(model)), dict(model.named_modules())

    def is_output(row) -> bool:
        module = modules.get(row.name)
        leaf = read_once(row) and not list(module.children()) and not isinstance(module, SAME_VALUES)
        return leaf or row.name in described
    return list(dict.fromkeys(row.name for row in layer_table(model, input_shape) if is_output(row)))


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
