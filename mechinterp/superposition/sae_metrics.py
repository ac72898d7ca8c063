"""How good an SAE is: reconstruction, sparsity, dead latents, and the model's accuracy with it.

    metrics = evaluate_sae(sae, vectors)          # vectors: (N, d) held-out activations
    metrics["mse"], metrics["explained_variance"], metrics["l0"], metrics["dead_fraction"]
    clean, spliced = accuracy_with_sae(model, "relu2", sae, images, labels)

Definitions (x: activation vectors, x̂: reconstructions, x̄: the mean vector over the set):
    reconstruction MSE     mean over vectors and dimensions of (x - x̂)²
    explained variance     1 - Σ‖x - x̂‖² / Σ‖x - x̄‖²  (1 - fraction of variance unexplained;
                           1 is perfect, 0 is no better than predicting the mean vector)
    L0                     mean number of non-zero latents per vector
    dead fraction          fraction of latents that are zero on every vector of the set
    spliced accuracy       the model's accuracy when the layer's output is replaced by x̂
                           (through mechinterp.hooks.intervene)
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.activations import to_vectors
from mechinterp.device import model_device
from mechinterp.hooks import intervene
from mechinterp.superposition.sae import SparseAutoencoder


def reconstruction_mse(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    return float((x - reconstruction).pow(2).mean())


def explained_variance(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    residual = (x - reconstruction).pow(2).sum()
    total = (x - x.mean(dim=0)).pow(2).sum()
    return float(1.0 - residual / total.clamp_min(1e-12))


def l0(latents: torch.Tensor) -> float:
    return float((latents != 0).float().sum(-1).mean())


def dead_fraction(latents: torch.Tensor) -> float:
    return float((latents == 0).all(dim=0).float().mean())


@torch.no_grad()
def evaluate_sae(sae: SparseAutoencoder, vectors: torch.Tensor, batch_size: int = 8192) -> dict:
    """All four metrics over a set of activation vectors, encoded in batches."""
    parts = [sae(vectors[start:start + batch_size]) for start in range(0, len(vectors), batch_size)]
    reconstruction = torch.cat([p[0] for p in parts])
    latents = torch.cat([p[1] for p in parts])
    return {"mse": reconstruction_mse(vectors, reconstruction),
            "explained_variance": explained_variance(vectors, reconstruction),
            "l0": l0(latents), "dead_fraction": dead_fraction(latents)}


def splice_sae(sae: SparseAutoencoder):
    """An intervention replacing a layer's output by the SAE's reconstruction of it."""
    def replace(activation: torch.Tensor) -> torch.Tensor:
        vectors, restore = to_vectors(activation)
        reconstruction, _ = sae(vectors)
        return restore(reconstruction)
    return replace


@torch.no_grad()
def accuracy_with_sae(model: nn.Module, layer: str, sae: SparseAutoencoder, images: torch.Tensor,
                      labels: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    """(accuracy as trained, accuracy with `layer` replaced by its SAE reconstruction)."""
    device = model_device(model)
    clean = spliced = 0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        clean += int((model(x).argmax(-1) == y).sum())
        with intervene(model, {layer: splice_sae(sae)}):
            spliced += int((model(x).argmax(-1) == y).sum())
    return clean / len(images), spliced / len(images)


def dictionary_recovery(true_directions: torch.Tensor, learned_directions: torch.Tensor) -> torch.Tensor:
    """For each true direction (row), the best signed cosine with any learned direction (row).

    Signed, because a latent is non-negative: a decoder row pointing the opposite way writes
    minus the feature and cannot reconstruct it, so it does not count as recovered."""
    true_unit = true_directions / true_directions.norm(dim=1, keepdim=True)
    learned_unit = learned_directions / learned_directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (true_unit @ learned_unit.T).max(dim=1).values
