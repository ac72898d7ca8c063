"""Head ablation: run the model with chosen heads' outputs replaced by zero, their mean, or their
value on other sequences.

    with ablate_heads(model, [(1, 2)], "zero"):
        logits = model(tokens)
    with ablate_heads(model, [(0, 1), (1, 3)], "mean", reference=other_tokens):
        ...
    with ablate_heads(model, [(1, 2)], "resample", reference=other_tokens):
        ...   # each sequence gets the head's output on a different reference sequence

A head's output is its slice of blocks.{l}.attn.hook_z (everything it writes passes through
W_O from there), changed with mechinterp.hooks.intervene. Mean ablation uses the head's mean over
the reference batch at each position; resample ablation the reference batch itself, rolled by one
so that no sequence gets its own value back when reference is tokens.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch import nn

from mechinterp.hooks import capture, intervene
from mechinterp.transformers.interface import check_hook_points, check_tokens, checked_heads
from mechinterp.transformers.logit_attribution import z_hook

METHODS = ("zero", "mean", "resample")


def _reference_z(model: nn.Module, reference: torch.Tensor, layers: set[int]) -> dict[int, torch.Tensor]:
    check_tokens(model, reference)
    check_hook_points(model, [z_hook(layer) for layer in layers])
    with torch.no_grad(), capture(model, [z_hook(layer) for layer in layers]) as captured:
        model(reference)
    return {layer: captured[z_hook(layer)] for layer in layers}


def _replacement(method: str, z: torch.Tensor | None) -> torch.Tensor | None:
    if method == "zero":
        return None
    if method == "mean":
        return z.mean(dim=0, keepdim=True)
    return z.roll(1, dims=0)


def _change(heads: list[int], replacement: torch.Tensor | None):
    def change(z: torch.Tensor) -> torch.Tensor:
        if replacement is not None and (replacement.shape[0] not in (1, z.shape[0])
                                        or replacement.shape[1:] != z.shape[1:]):
            raise ValueError(f"the reference tokens give head outputs of shape {tuple(replacement.shape)}, "
                             f"the run {tuple(z.shape)}: pass reference tokens of the same length "
                             "(and, for resample, as many sequences)")
        out = z.clone()
        out[:, :, heads] = 0 if replacement is None else replacement[..., heads, :].expand_as(out[:, :, heads])
        return out
    return change


@contextlib.contextmanager
def ablate_heads(model: nn.Module, heads: Iterable[tuple[int, int]], method: str = "zero",
                 reference: torch.Tensor | None = None) -> Iterator[None]:
    """Within the block, the given heads ((layer, head) or "layer.head") output the ablated value."""
    if method not in METHODS:
        raise ValueError(f"ablation method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "zero" and reference is None:
        raise ValueError(f"{method} ablation needs reference tokens to take the head's values from")
    by_layer: dict[int, list[int]] = {}
    for layer, head in checked_heads(model, heads):
        by_layer.setdefault(layer, []).append(head)
    zs = _reference_z(model, reference, set(by_layer)) if method != "zero" else {}
    check_hook_points(model, [z_hook(layer) for layer in by_layer])
    changes = {z_hook(layer): _change(hs, _replacement(method, zs.get(layer)))
               for layer, hs in by_layer.items()}
    with intervene(model, changes):
        yield
