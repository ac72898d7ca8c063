"""Activation patching of head outputs: which heads carry the clean run's answer.

    metric = correct_logit_metric(clean_tokens, positions)   # logits -> one number
    result = patch_each_head(model, clean_tokens, corrupted_tokens, metric)
    result.recovered                                         # (layer, head)

Each head's output (its slice of hook_z, at every position) is copied from the clean run into the
corrupted run, one head at a time, and the metric M is read off the patched logits. The effect is
reported as the vision circuits report theirs (mechinterp/circuits/patching.py):

    recovered = (M_patched - M_corrupted) / (M_clean - M_corrupted)

0: the head carries none of the difference; 1: patching it alone restores the clean answer. The
usual metric is the mean (vocabulary-centred) logit of the clean run's next tokens at the given
positions. Changes go through mechinterp.hooks.intervene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from mechinterp.hooks import capture, intervene
from mechinterp.transformers.interface import all_heads, check_hook_points, check_tokens, size
from mechinterp.transformers.logit_attribution import z_hook

Metric = Callable[[torch.Tensor], float]


@dataclass
class HeadPatching:
    clean: float                   # M on the clean run
    corrupted: float               # M on the corrupted run
    patched: torch.Tensor          # (layer, head) M with that head patched from clean
    recovered: torch.Tensor        # (layer, head) fraction of the difference it restores


def correct_logit_metric(clean_tokens: torch.Tensor, positions: slice) -> Metric:
    """logits -> mean centred logit of the clean sequence's next token at `positions`."""
    targets = clean_tokens[:, 1:][:, positions]

    def metric(logits: torch.Tensor) -> float:
        centred = logits[:, :-1][:, positions] - logits[:, :-1][:, positions].mean(-1, keepdim=True)
        return float(centred.gather(-1, targets[..., None]).mean())
    return metric


def _patch_head(head: int, clean_z: torch.Tensor):
    def change(z: torch.Tensor) -> torch.Tensor:
        out = z.clone()
        out[:, :, head] = clean_z[:, :, head]
        return out
    return change


@torch.no_grad()
def patch_each_head(model: nn.Module, clean: torch.Tensor, corrupted: torch.Tensor,
                    metric: Metric) -> HeadPatching:
    """Patch every head's output from the clean run into the corrupted one, one at a time."""
    if clean.shape != corrupted.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupted.shape)} "
                         "token batches must have the same shape")
    check_tokens(model, clean), check_tokens(model, corrupted)
    names = [z_hook(layer) for layer in range(size(model, "n_layers"))]
    check_hook_points(model, names)
    with capture(model, names) as captured:
        clean_value = metric(model(clean))
    clean_z = dict(captured)
    corrupted_value = metric(model(corrupted))
    patched = torch.zeros(size(model, "n_layers"), size(model, "n_heads"), dtype=torch.float64)
    for layer, head in all_heads(model):
        with intervene(model, {z_hook(layer): _patch_head(head, clean_z[z_hook(layer)])}):
            patched[layer, head] = metric(model(corrupted))
    recovered = (patched - corrupted_value) / (clean_value - corrupted_value)
    return HeadPatching(clean_value, corrupted_value, patched, recovered)
