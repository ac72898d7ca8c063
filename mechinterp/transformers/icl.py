"""Losses on token positions: the in-context-learning score and the loss on repeated tokens.

    position_losses(model, tokens)               # (batch, pos - 1) next-token losses
    icl_score(model, tokens, early=4, late=40)   # mean loss at `late` minus at `early`
    icl_positions(48)                            # (4, 40): the positions for sequences of 48 tokens
    repeated_token_loss(model, tokens, half)     # mean loss on the second half of [r, r]

Olsson et al. (2022) define the in-context-learning score as the loss at a late token minus the
loss at an early one (the 500th and the 50th in their models): negative when the model predicts
better the more context it has. Here contexts are short, so the positions are parameters, and
icl_positions scales them to a sequence length: 1/12 of it in from the start, twice that from the end.
"""
from __future__ import annotations

import torch
from torch import nn

from mechinterp.transformers.interface import check_tokens
from mechinterp.transformers.sequences import repeated_loss_positions
from mechinterp.transformers.training import next_token_loss


@torch.no_grad()
def position_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """(batch, pos - 1): the loss of predicting tokens[:, t + 1] at each position t."""
    check_tokens(model, tokens)
    return next_token_loss(model(tokens), tokens)


def icl_score(model: nn.Module, tokens: torch.Tensor, early: int = 4, late: int = 40) -> float:
    """Mean loss at position `late` minus mean loss at position `early` (negative: learns in context)."""
    if not 0 <= early < late < tokens.shape[1] - 1:
        raise ValueError(f"need 0 <= early < late < {tokens.shape[1] - 1}, got {early}, {late}")
    losses = position_losses(model, tokens)
    return float(losses[:, late].mean() - losses[:, early].mean())


def icl_positions(length: int) -> tuple[int, int]:
    """(early, late) for icl_score on sequences of `length` tokens: 4 and 40 of 48, in proportion
    for other lengths (any model's context, down to 3 tokens: late must be a position that has a
    next token, after early)."""
    early = length // 12
    late = min(length - 2 * early, length - 2)
    if not early < late:
        raise ValueError(f"the in-context-learning score compares two positions of a sequence: "
                         f"{length} tokens are too few, it needs 3 or more")
    return early, late


def repeated_token_loss(model: nn.Module, tokens: torch.Tensor, half: int) -> float:
    """Mean loss on the tokens of [r, r] that repeat the first half (their predecessor too)."""
    return float(position_losses(model, tokens)[:, repeated_loss_positions(half)].mean())
