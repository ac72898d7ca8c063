"""Ablation: silence units and measure what the network loses, overall and per class.

Three ways to remove a unit's information (all applied through mechinterp.hooks.intervene):
  zero      set the unit's activation to 0 (simple, but 0 may be far from anything it outputs)
  mean      set it to its mean activation over a reference set (per position), keeping the
            average signal downstream layers expect
  resample  replace it by its activation on a random other input from the reference set, so
            the value stays on the data distribution (resample- or "causal scrubbing"-style)

    effect = ablation_effect(model, images, labels, "relu2", units=[5], method="mean",
                             reference=train_images)
    effect.accuracy_change, effect.loss_change, effect.loss_effect_size, effect.per_class_accuracy_change
    effects = ablate_each_unit(model, images, labels, "relu2", method="zero")   # one per unit

Effect sizes are paired Cohen's d (mean of the per-example change divided by its standard
deviation), so a small but consistent change and a large but noisy one can be told apart.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mechinterp.circuits.units import check_same_shape, check_units, layer_output_shape
from mechinterp.hooks import Intervention, capture, intervene, replace_units, zero_units

METHODS = ("zero", "mean", "resample")


def reference_activations(model: nn.Module, layer: str, reference: torch.Tensor,
                          batch_size: int = 256) -> torch.Tensor:
    """The layer's activations on every reference input (N, ...), read with hooks.capture."""
    parts = []
    with torch.no_grad(), capture(model, [layer]) as activations:
        for start in range(0, len(reference), batch_size):
            model(reference[start:start + batch_size])
            parts.append(activations[layer])
    return torch.cat(parts)


def resample_units(pool: torch.Tensor, units: Sequence[int], seed: int = 0) -> Intervention:
    """Replace the units by their values on random inputs drawn from `pool` (N, C, ...)."""
    generator = torch.Generator().manual_seed(seed)

    def change(activation):
        check_same_shape("the layer's activation", activation, "the reference activations", pool)
        picks = torch.randint(len(pool), (len(activation),), generator=generator)
        out = activation.clone()
        out[:, list(units)] = pool[picks][:, list(units)].to(activation.device, activation.dtype)
        return out
    return change


def ablation_intervention(model: nn.Module, layer: str, units: Sequence[int], method: str,
                          reference: torch.Tensor | None = None, seed: int = 0,
                          pool: torch.Tensor | None = None) -> Intervention:
    """The intervention (activation -> activation) that ablates `units` of `layer`.

    pool: the layer's activations on the reference inputs, when already computed."""
    if method not in METHODS:
        raise ValueError(f"ablation method must be one of {METHODS}, got {method!r}")
    if method == "zero":
        return zero_units(units)
    if pool is None:
        if reference is None or len(reference) == 0:
            raise ValueError(f"{method} ablation needs reference inputs (e.g. training images) "
                             "to take activations from; pass reference=...")
        pool = reference_activations(model, layer, reference)
    if method == "mean":
        return replace_units(pool.mean(0)[list(units)], units)
    return resample_units(pool, units, seed)


@dataclass
class Evaluation:
    """Per-example results of running a classifier: logits, losses and correctness."""
    logits: torch.Tensor      # (N, classes)
    losses: torch.Tensor      # (N,) cross-entropy
    correct: torch.Tensor     # (N,) bool

    def true_logits(self, labels: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(1, labels[:, None])[:, 0]


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             interventions: dict[str, Intervention] | None = None,
             batch_size: int = 256) -> Evaluation:
    """Logits, per-example loss and correctness, optionally under interventions."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; they must match")
    parts = []
    with torch.no_grad(), intervene(model, interventions or {}):
        for start in range(0, len(images), batch_size):
            parts.append(model(images[start:start + batch_size]))
    logits = torch.cat(parts).float()
    labels = labels.to(logits.device)
    losses = F.cross_entropy(logits, labels, reduction="none")
    return Evaluation(logits, losses, logits.argmax(1) == labels)


def paired_effect_size(change: torch.Tensor) -> float:
    """Paired Cohen's d: mean per-example change over its standard deviation (0 if constant 0)."""
    change = change.double()
    spread = change.std() if len(change) > 1 else torch.tensor(0.0)
    if spread < 1e-12:
        return 0.0 if change.abs().max() < 1e-12 else float("inf") * float(change.mean().sign())
    return float(change.mean() / spread)


@dataclass
class AblationEffect:
    """What ablating some units of a layer did to a classifier on a labelled set."""
    layer: str
    units: list[int]
    method: str
    clean_accuracy: float
    ablated_accuracy: float
    clean_loss: float
    ablated_loss: float
    true_logit_change: float            # mean change of the correct class's logit
    loss_effect_size: float             # paired Cohen's d of the per-example loss change
    true_logit_effect_size: float
    per_class_accuracy_change: list[float]
    per_class_loss_change: list[float]

    @property
    def accuracy_change(self) -> float:
        return self.ablated_accuracy - self.clean_accuracy

    @property
    def loss_change(self) -> float:
        return self.ablated_loss - self.clean_loss

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy_change": self.accuracy_change,
                "loss_change": self.loss_change}


def per_class_mean(values: torch.Tensor, labels: torch.Tensor, classes: int) -> list[float]:
    """Mean of `values` over the examples of each class (nan for a class with none)."""
    return [float(values[labels == c].float().mean()) if (labels == c).any() else float("nan")
            for c in range(classes)]


def compare(clean: Evaluation, ablated: Evaluation, labels: torch.Tensor, layer: str,
            units: list[int], method: str) -> AblationEffect:
    """The effect record of one ablation, from the clean and ablated evaluations."""
    labels = labels.to(clean.logits.device)
    classes = clean.logits.shape[1]
    loss_change = ablated.losses - clean.losses
    logit_change = ablated.true_logits(labels) - clean.true_logits(labels)
    correct_change = ablated.correct.float() - clean.correct.float()
    return AblationEffect(
        layer, units, method,
        float(clean.correct.float().mean()), float(ablated.correct.float().mean()),
        float(clean.losses.mean()), float(ablated.losses.mean()),
        float(logit_change.mean()), paired_effect_size(loss_change), paired_effect_size(logit_change),
        per_class_mean(correct_change, labels, classes), per_class_mean(loss_change, labels, classes))


def ablation_effect(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, layer: str,
                    units: Sequence[int] | None, method: str = "zero",
                    reference: torch.Tensor | None = None, seed: int = 0,
                    batch_size: int = 256, clean: Evaluation | None = None,
                    pool: torch.Tensor | None = None) -> AblationEffect:
    """Ablate `units` of `layer` (all if None) and compare with the clean run."""
    count = layer_output_shape(model, layer, images)[0]
    units = check_units(units, count, layer)
    change = ablation_intervention(model, layer, units, method, reference, seed, pool)
    clean = clean or evaluate(model, images, labels, batch_size=batch_size)
    ablated = evaluate(model, images, labels, {layer: change}, batch_size)
    return compare(clean, ablated, labels, layer, units, method)


def ablate_each_unit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, layer: str,
                     method: str = "zero", reference: torch.Tensor | None = None,
                     seed: int = 0, batch_size: int = 256,
                     progress: bool = False) -> list[AblationEffect]:
    """One AblationEffect per unit of `layer`, each unit ablated alone."""
    count = layer_output_shape(model, layer, images)[0]
    clean = evaluate(model, images, labels, batch_size=batch_size)
    pool = None
    if method != "zero" and reference is not None:
        pool = reference_activations(model, layer, reference, batch_size)
    return [ablation_effect(model, images, labels, layer, [unit], method, reference, seed,
                            batch_size, clean, pool)
            for unit in tqdm(range(count), desc=f"ablating {layer}", disable=not progress)]


def peak_drop_when_zeroed(model: nn.Module, images: torch.Tensor, source_layer: str,
                          units: Sequence[int], layer: str, target_unit: int) -> float:
    """Fraction of `target_unit`'s summed peak activation in `layer` (its maximum over positions,
    summed over the images) that is lost when `units` of `source_layer` are zeroed: how much of
    what the unit detects on these images those inputs carry."""
    with torch.no_grad(), capture(model, [layer]) as clean:
        model(images)
    with torch.no_grad(), capture(model, [layer]) as ablated, intervene(model, {source_layer: zero_units(units)}):
        model(images)
    before = clean[layer][:, target_unit].flatten(1).max(1).values
    after = ablated[layer][:, target_unit].flatten(1).max(1).values
    return float(1 - after.sum() / before.sum().clamp(min=1e-8))
