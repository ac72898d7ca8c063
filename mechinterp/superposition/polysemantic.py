"""Polysemantic units: units whose strongest inputs belong to unrelated classes.

For every unit (a neuron, a conv channel, or an SAE latent) take the k inputs that activate it
most and look at their class labels:

    purity    fraction of the top-k inputs in the unit's most common class (1 = one class only)
    entropy   entropy of the top-k class histogram, divided by log(number of classes)
              (0 = one class only, 1 = spread evenly over every class)

    scores = unit_scores(model, "relu2", images)            # activations.py: (images, units)
    report = class_purity(scores, labels, k=16, n_classes=8)
    polysemantic = find_polysemantic(report, max_purity=0.5)   # most polysemantic first
    report.top_indices[polysemantic[0]]                      # its top-k images, to show

The same report over SAE latents (unit_scores(..., vector_map=sae.encode)) measures whether the
dictionary's features are more monosemantic than the neurons (Bricken et al. 2023).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PurityReport:
    purity: torch.Tensor          # (units,)
    entropy: torch.Tensor         # (units,) normalised to [0, 1]
    top_indices: torch.Tensor     # (units, k) input indices, strongest first
    top_values: torch.Tensor      # (units, k) their activations
    class_counts: torch.Tensor    # (units, n_classes) histogram of the top-k labels
    alive: torch.Tensor           # (units,) bool: the unit is non-zero on all of its top k

    @property
    def majority_class(self) -> torch.Tensor:
        return self.class_counts.argmax(dim=1)


def class_histogram(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(units, k) labels -> (units, n_classes) counts."""
    counts = torch.zeros(labels.shape[0], n_classes, dtype=torch.long)
    return counts.scatter_add_(1, labels, torch.ones_like(labels))


def normalised_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's distribution over classes, divided by log(n_classes)."""
    probabilities = counts.float() / counts.sum(dim=1, keepdim=True).clamp_min(1)
    terms = torch.where(probabilities > 0, probabilities * probabilities.log(), torch.zeros(()))
    return (-terms.sum(dim=1) / torch.log(torch.tensor(float(counts.shape[1])))).clamp_min(0.0)


def class_purity(scores: torch.Tensor, labels: torch.Tensor, k: int = 16,
                 n_classes: int | None = None) -> PurityReport:
    """Purity and entropy of the class labels of each unit's k most activating inputs."""
    if k > len(scores):
        raise ValueError(f"k={k} top inputs asked for, but only {len(scores)} inputs were scored")
    n_classes = n_classes or int(labels.max()) + 1
    top_values, top_indices = scores.T.topk(k, dim=1)
    counts = class_histogram(labels.cpu()[top_indices.cpu()], n_classes)
    return PurityReport(purity=counts.max(dim=1).values.float() / k,
                        entropy=normalised_entropy(counts), top_indices=top_indices.cpu(),
                        top_values=top_values.cpu(), class_counts=counts,
                        alive=(top_values > 0).all(dim=1).cpu())


def find_polysemantic(report: PurityReport, max_purity: float = 0.5) -> list[int]:
    """Live units whose top inputs are at most max_purity one class, most mixed first."""
    candidates = (report.purity <= max_purity) & report.alive
    order = torch.argsort(report.entropy, descending=True)
    return [int(unit) for unit in order if candidates[unit]]


def summary(report: PurityReport) -> dict:
    """Mean purity and entropy over live units, and how many units are live."""
    alive = report.alive
    return {"mean_purity": float(report.purity[alive].mean()) if alive.any() else float("nan"),
            "mean_entropy": float(report.entropy[alive].mean()) if alive.any() else float("nan"),
            "live_units": int(alive.sum()), "units": len(alive)}


def contributions_to_unit(latents: torch.Tensor, decoder: torch.Tensor, unit: int,
                          scale: float = 1.0) -> torch.Tensor:
    """How much each dictionary latent adds to `unit` over a set of inputs: Σ_x f_j(x) · W_dec[j, unit] · s.

    latents: (inputs, n_latents) SAE latents of the unit's top inputs; decoder: (n_latents, units).
    The largest entries name the features a polysemantic unit's top activations are made of."""
    return (latents * decoder[:, unit]).sum(dim=0) * scale


def features_behind_unit(contributions: torch.Tensor, latents_report: PurityReport,
                         count: int) -> list[int]:
    """The `count` live latents contributing most, each with a different majority class."""
    chosen, classes = [], set()
    for latent in torch.argsort(contributions, descending=True).tolist():
        if contributions[latent] <= 0 or len(chosen) == count:
            break
        majority = int(latents_report.majority_class[latent])
        if latents_report.alive[latent] and majority not in classes:
            chosen.append(latent)
            classes.add(majority)
    return chosen
