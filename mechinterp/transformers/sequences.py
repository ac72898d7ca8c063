"""Token sequences with a repeated random segment: the data induction heads form on.

    tokens = repeated_segments(batch=32, n_ctx=48, d_vocab=64, generator=g)  # training data
    tokens = repeated_random_tokens(batch=64, half=16, d_vocab=64, generator=g)  # [r, r]
    tokens[:, repeated_loss_positions(16)]   # the predictions whose targets repeat the first half

A training sequence is a random segment of 6 to 19 tokens, tiled to the context length: from the
second period on, every next token is the one that followed the current token last time, which an
induction head (previous-token head + prefix matching) predicts and no bigram statistic can.
The evaluation sequences are the usual random half repeated once, so the induction offset is
fixed: position t of the second half attends to t - half + 1.
"""
from __future__ import annotations

import torch

SEGMENT_LENGTHS = (6, 19)


def repeated_segments(batch: int, n_ctx: int, d_vocab: int, generator: torch.Generator,
                      lengths: tuple[int, int] = SEGMENT_LENGTHS) -> torch.Tensor:
    """(batch, n_ctx) long: each row a random segment of a random length, repeated to n_ctx."""
    period = torch.randint(lengths[0], lengths[1] + 1, (batch, 1), generator=generator)
    segment = torch.randint(0, d_vocab, (batch, lengths[1]), generator=generator)
    position = torch.arange(n_ctx)[None] % period
    return segment.gather(1, position)


def repeated_random_tokens(batch: int, half: int, d_vocab: int,
                           generator: torch.Generator) -> torch.Tensor:
    """(batch, 2 * half) long: `half` random tokens, then the same tokens again."""
    first = torch.randint(0, d_vocab, (batch, half), generator=generator)
    return torch.cat([first, first], dim=1)


def repeated_loss_positions(half: int) -> slice:
    """The predictions (positions of the logits) whose targets repeat the first half:
    from position `half` on (predicting tokens half + 1 ... 2 * half - 1)."""
    return slice(half, 2 * half - 1)
