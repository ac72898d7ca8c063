"""The phase change, read off a model's snapshots: loss on repeated tokens and the best induction
score at each training step, and the step where the score jumps.

    curve = snapshot_curve(snapshots, tokens, half)   # [(step, repeated loss, best induction score)]
    phase_change_step(curve)                          # first step half way from first to last score
    value_near(curve, step)                           # the repeated loss at the nearest snapshot

`snapshots` is any iterable of (step, model), e.g. snapshots.snapshot_models(name) or a training
report's state dicts loaded into one model. The induction score is the best head's of the last
layer (detectors.induction_scores) on the [r, r] tokens given.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from mechinterp.transformers.detectors import induction_scores
from mechinterp.transformers.icl import repeated_token_loss


def snapshot_curve(snapshots: Iterable[tuple[int, nn.Module]], tokens: torch.Tensor,
                   half: int) -> list[tuple[int, float, float]]:
    """[(step, repeated-token loss, best last-layer induction score)] over the snapshots."""
    return [(step, repeated_token_loss(model, tokens, half),
             float(induction_scores(model, tokens, half)[-1].max())) for step, model in snapshots]


def phase_change_step(curve: list[tuple[int, float, float]]) -> int:
    """The first step at which the induction score is half way from its first to its last value."""
    first, last = curve[0][2], curve[-1][2]
    return next(step for step, _, score in curve if score >= (first + last) / 2)


def value_near(curve: list[tuple[int, float, float]], step: int) -> float:
    """The repeated-token loss at the snapshot nearest to `step`."""
    return min(curve, key=lambda row: abs(row[0] - step))[1]


def states_as_models(model: nn.Module, states: Iterable[tuple[int, dict]]):
    """(step, model) for each (step, state_dict), loading each state into `model` in turn."""
    for step, state in states:
        model.load_state_dict(state)
        yield step, model.eval()
