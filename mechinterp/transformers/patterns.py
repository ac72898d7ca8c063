"""Attention patterns of every head, read through the model's hook points.

    patterns = attention_patterns(model, tokens)     # {layer: (batch, head, query, key)}
    offset_score(patterns[1], offset=-(half - 1))    # (head,) mean attention at that offset

All reads go through mechinterp.hooks.capture on blocks.{l}.attn.hook_pattern.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.hooks import capture
from mechinterp.transformers.interface import check_hook_points, check_tokens, size


def pattern_hook(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_pattern"


@torch.no_grad()
def per_layer(model: nn.Module, tokens: torch.Tensor, hook_name) -> dict[int, torch.Tensor]:
    """{layer: the activation at hook_name(layer)} of one forward pass."""
    check_tokens(model, tokens)
    names = {layer: hook_name(layer) for layer in range(size(model, "n_layers"))}
    check_hook_points(model, names.values())
    with capture(model, list(names.values())) as captured:
        model(tokens)
    return {layer: captured[name] for layer, name in names.items()}


def attention_patterns(model: nn.Module, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    """{layer: (batch, head, query, key) attention pattern} of one forward pass."""
    return per_layer(model, tokens, pattern_hook)


def offset_score(pattern: torch.Tensor, offset: int, first_query: int = 0) -> torch.Tensor:
    """(head,) mean attention from query q to key q + offset (offset <= 0), over the batch and
    the queries from first_query on that have such a key."""
    queries = pattern.shape[-2]
    first = max(first_query, -offset)
    rows = torch.arange(first, queries)
    return pattern[:, :, rows, rows + offset].mean(dim=(0, 2))
