"""Activation patching: copy activations from a donor input into a target input's run.

The target is classified as its own class t, the donor as d. Patching a unit of a layer with
the donor's value and watching the logit difference LD = logit[d] - logit[t] move tells how
much of the donor's verdict flows through that unit:

    recovered = (LD_patched - LD_target) / (LD_donor - LD_target)

0 means the unit carries none of the difference, 1 means patching it alone turns the target's
output into the donor's (as patching a whole layer of a feed-forward net always does).

    result = patch_each_unit(model, target_x, donor_x, "relu2")     # one batched pass per chunk
    result.recovered                                                 # (pairs, units)
    layers = patch_each_layer(model, target_x, donor_x, ["relu1", "relu2", "relu3"])
    heat = patching_heatmap(model, target_x, donor_x, ["relu1", "relu2"])

Patching every unit of a layer is batched: the target is repeated once per unit and a one-hot
mask over channels picks, for each copy, the unit that takes the donor's value. All changes go
through mechinterp.hooks.intervene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from mechinterp.circuits.units import check_same_shape, check_units
from mechinterp.hooks import intervene, patch_from_donor, run_with_cache


def logit_difference(logits: torch.Tensor, donor_class: torch.Tensor,
                     target_class: torch.Tensor) -> torch.Tensor:
    """logit[donor class] - logit[target class] per row."""
    rows = torch.arange(len(logits), device=logits.device)
    return logits[rows, donor_class.to(logits.device)] - logits[rows, target_class.to(logits.device)]


@dataclass
class PatchingBaseline:
    """The unpatched runs of target/donor pairs, and the classes whose logits are compared."""
    target_class: torch.Tensor     # (pairs,)
    donor_class: torch.Tensor      # (pairs,)
    target_difference: torch.Tensor   # LD on the clean target run (pairs,)
    donor_difference: torch.Tensor    # LD on the clean donor run (pairs,)

    def recovered(self, patched_logits: torch.Tensor) -> torch.Tensor:
        """Fraction of the donor's logit difference that the patched run recovers."""
        patched = logit_difference(patched_logits, self.donor_class, self.target_class)
        return (patched - self.target_difference) / (self.donor_difference - self.target_difference)


def patching_baseline(model: nn.Module, target: torch.Tensor, donor: torch.Tensor,
                      target_class=None, donor_class=None) -> PatchingBaseline:
    """Run target and donor cleanly; classes default to each input's predicted class."""
    check_same_shape("target", target, "donor", donor)
    if len(target) != len(donor):
        raise ValueError(f"{len(target)} targets but {len(donor)} donors: pass them in pairs")
    with torch.no_grad():
        target_logits, donor_logits = model(target), model(donor)
    target_class = _classes(target_class, target_logits)
    donor_class = _classes(donor_class, donor_logits)
    if (target_class == donor_class).any():
        raise ValueError("a target and its donor have the same class, so their logit "
                         "difference is 0 and nothing can be recovered; pick a donor of "
                         "another class or pass target_class / donor_class")
    return PatchingBaseline(target_class, donor_class,
                            logit_difference(target_logits, donor_class, target_class),
                            logit_difference(donor_logits, donor_class, target_class))


def _classes(given, logits: torch.Tensor) -> torch.Tensor:
    if given is None:
        return logits.argmax(1)
    return torch.as_tensor(given, device=logits.device).long().expand(len(logits))


@dataclass
class PatchingResult:
    """Recovered logit difference for each pair and each patched unit of one layer."""
    layer: str
    units: list[int]
    recovered: torch.Tensor        # (pairs, units)
    baseline: PatchingBaseline


def unit_mask(units: Sequence[int], channels: int, activation_shape: torch.Size,
              device) -> torch.Tensor:
    """One-hot masks (len(units), C, 1, ...) selecting one channel per row."""
    mask = torch.zeros(len(units), channels, device=device)
    mask[torch.arange(len(units)), torch.as_tensor(units)] = 1.0
    return mask.view(len(units), channels, *([1] * (len(activation_shape) - 2)))


def patch_units_batched(model: nn.Module, target: torch.Tensor, donor_activation: torch.Tensor,
                        layer: str, units: Sequence[int]) -> torch.Tensor:
    """Logits (pairs, len(units), classes): each copy of each target gets one unit patched."""
    pairs = len(target)
    repeated = target.repeat_interleave(len(units), dim=0)
    donor_rows = donor_activation.repeat_interleave(len(units), dim=0)

    def change(activation):
        mask = unit_mask(units, activation.shape[1], activation.shape, activation.device)
        mask = mask.repeat(pairs, *([1] * (activation.dim() - 1))).to(activation.dtype)
        return activation * (1 - mask) + donor_rows.to(activation.dtype) * mask

    with torch.no_grad(), intervene(model, {layer: change}):
        logits = model(repeated)
    return logits.view(pairs, len(units), -1)


def patch_each_unit(model: nn.Module, target: torch.Tensor, donor: torch.Tensor, layer: str,
                    units: Sequence[int] | None = None, target_class=None, donor_class=None,
                    units_per_batch: int = 64, progress: bool = False) -> PatchingResult:
    """Patch every unit of `layer` (or the given ones) alone, batched over units."""
    baseline = patching_baseline(model, target, donor, target_class, donor_class)
    _, cache = run_with_cache(model, donor, [layer])
    donor_activation = cache[layer]
    units = check_units(units, donor_activation.shape[1], layer)
    chunks = [units[i:i + units_per_batch] for i in range(0, len(units), units_per_batch)]
    recovered = [torch.zeros(len(target), 0, device=baseline.target_difference.device)]
    for chunk in tqdm(chunks, desc=f"patching {layer}", disable=not progress):
        logits = patch_units_batched(model, target, donor_activation, layer, chunk)
        recovered.append(torch.stack([baseline.recovered(logits[:, i]) for i in range(len(chunk))], 1))
    return PatchingResult(layer, units, torch.cat(recovered, 1), baseline)


def patch_each_unit_sequential(model: nn.Module, target: torch.Tensor, donor: torch.Tensor,
                               layer: str, units: Sequence[int] | None = None,
                               target_class=None, donor_class=None) -> PatchingResult:
    """The same as patch_each_unit, one forward pass per unit (the slow reference)."""
    baseline = patching_baseline(model, target, donor, target_class, donor_class)
    _, cache = run_with_cache(model, donor, [layer])
    units = check_units(units, cache[layer].shape[1], layer)
    empty = torch.zeros(len(target), 0, device=baseline.target_difference.device)
    recovered = [baseline.recovered(patch_from_donor(model, target, donor, layer, [unit]))[:, None]
                 for unit in units]
    return PatchingResult(layer, units, torch.cat([empty, *recovered], 1), baseline)


def patch_each_layer(model: nn.Module, target: torch.Tensor, donor: torch.Tensor,
                     layers: Sequence[str], target_class=None,
                     donor_class=None) -> dict[str, torch.Tensor]:
    """Recovered logit difference (pairs,) when the whole of each layer comes from the donor."""
    baseline = patching_baseline(model, target, donor, target_class, donor_class)
    return {layer: baseline.recovered(patch_from_donor(model, target, donor, layer))
            for layer in layers}


@dataclass
class PatchingHeatmap:
    """Mean recovered logit difference, one row per layer, one column per unit (nan-padded)."""
    layers: list[str]
    values: torch.Tensor           # (layers, max units), mean over pairs
    whole_layer: torch.Tensor      # (layers,), mean over pairs
    per_unit: dict[str, PatchingResult]


def patching_heatmap(model: nn.Module, target: torch.Tensor, donor: torch.Tensor,
                     layers: Sequence[str], target_class=None, donor_class=None,
                     units_per_batch: int = 64) -> PatchingHeatmap:
    """Per-unit and whole-layer patching for several layers, averaged over the pairs."""
    per_unit = {layer: patch_each_unit(model, target, donor, layer, None, target_class,
                                       donor_class, units_per_batch) for layer in layers}
    width = max(len(r.units) for r in per_unit.values())
    values = torch.full((len(layers), width), float("nan"))
    for row, layer in enumerate(layers):
        values[row, :len(per_unit[layer].units)] = per_unit[layer].recovered.mean(0).cpu()
    whole = patch_each_layer(model, target, donor, layers, target_class, donor_class)
    whole_layer = torch.stack([whole[layer].mean().cpu() for layer in layers])
    return PatchingHeatmap(list(layers), values, whole_layer, per_unit)
