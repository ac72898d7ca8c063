"""Measures of how a toy model arranges its features (Elhage et al. 2022), for every instance at once.

W has shape (instances, features, hidden): row W[k, i] is feature i's direction W_i in the hidden
space of instance k (a column of the paper's m x n matrix W). Ŵ_i = W_i / ‖W_i‖.

    feature_gram(W)              WᵀW, (instances, n, n): how each feature reads out every other
    feature_norms(W)             ‖W_i‖: ~1 represented, ~0 not represented
    superposition(W)             Σ_{j≠i} (Ŵ_i·W_j)²: how much other features share W_i's direction
    feature_dimensionality(W)    D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²: the fraction of a dimension feature i
                                 gets (1 dedicated, 1/2 antipodal pair, 2/5 pentagon, 0 not represented)
    dimensions_per_feature(W)    m / ‖W‖_F²: hidden dimensions per embedded feature
    instance_loss(model)         each instance's loss on a fresh, seeded batch of inputs
"""
from __future__ import annotations

import torch

from mechinterp.superposition.toy_models import ToyModel, instance_losses, sample_features

NORM_FLOOR = 1e-6   # below this a feature counts as not represented: no direction to speak of


def feature_gram(W: torch.Tensor) -> torch.Tensor:
    """WᵀW in the paper's notation: entry (i, j) = W_i·W_j."""
    return W @ W.transpose(-1, -2)


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """‖W_i‖ for every instance and feature."""
    return torch.linalg.vector_norm(W, dim=-1)


def unit_directions(W: torch.Tensor) -> torch.Tensor:
    """Ŵ_i, with zero rows left at zero."""
    return W / feature_norms(W).clamp_min(NORM_FLOOR)[..., None]


def squared_projections(W: torch.Tensor) -> torch.Tensor:
    """(Ŵ_i·W_j)², entry (i, j): how much of W_j lies along feature i's direction."""
    return (unit_directions(W) @ W.transpose(-1, -2)) ** 2


def superposition(W: torch.Tensor) -> torch.Tensor:
    """Σ_{j≠i} (Ŵ_i·W_j)²: 0 when feature i has its direction to itself."""
    projections = squared_projections(W)
    return projections.sum(-1) - projections.diagonal(dim1=-2, dim2=-1)


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²; 0 for features the model does not represent."""
    norms = feature_norms(W)
    total = squared_projections(W).sum(-1)
    dimensionality = norms ** 2 / total.clamp_min(NORM_FLOOR ** 2)
    return torch.where(norms > NORM_FLOOR, dimensionality, torch.zeros_like(dimensionality))


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """m / ‖W‖_F²: about 1 when m features own a dimension each, 1/2 for antipodal pairs."""
    n_hidden = W.shape[-1]
    return n_hidden / (W ** 2).sum(dim=(-2, -1))


@torch.no_grad()
def instance_loss(model: ToyModel, n_samples: int = 100_000, seed: int = 1234,
                  chunk: int = 10_000) -> torch.Tensor:
    """Each instance's importance-weighted loss on n_samples inputs drawn from one seeded stream
    of uniforms shared by all instances, so that instances are compared on common inputs."""
    generator = torch.Generator(device=model.W.device).manual_seed(seed)
    total = torch.zeros(model.spec.n_instances, device=model.W.device)
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        x = sample_features(size, model.feature_probability, generator, shared=True)
        total += instance_losses(model, x) * size
    return total / n_samples
