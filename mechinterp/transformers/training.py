"""Training a token model on repeated segments, keeping snapshots along the way.

    settings = SequenceTraining(steps=3000, batch_size=32, learning_rate=1e-3, seed=0)
    report = train_on_sequences(model, settings)
    report.snapshots          # [(step, state_dict)], every settings.snapshot_every steps
    report.train_seconds, report.steps_per_second, report.final_loss

Adam at a constant learning rate on freshly drawn batches (sequences.repeated_segments), next-token
cross-entropy over every position. The data generator is seeded from the settings and the
weights from seed_everything(seed) before the model is built (the zoo does both), so on the CPU
the same settings give the same weights on reruns. Snapshots are what the phase-change figure
replays: the induction score and repeated-token loss at each one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from mechinterp.models.training import OptimiserSettings
from mechinterp.transformers.interface import require_sizes, size
from mechinterp.transformers.sequences import SEGMENT_LENGTHS, repeated_segments


@dataclass(kw_only=True)
class SequenceTraining(OptimiserSettings):
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    snapshot_every: int = 100
    segment_lengths: tuple[int, int] = SEGMENT_LENGTHS


@dataclass
class SequenceReport:
    train_seconds: float
    steps_per_second: float
    final_loss: float                   # mean loss over the last snapshot interval
    snapshots: list[tuple[int, dict]] = field(default_factory=list)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(batch, pos - 1) cross-entropy of predicting tokens[:, t + 1] from logits[:, t]."""
    predicted = logits[:, :-1].transpose(1, 2)
    return nn.functional.cross_entropy(predicted, tokens[:, 1:], reduction="none")


def _state_copy(model: nn.Module) -> dict:
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


def train_on_sequences(model: nn.Module, settings: SequenceTraining,
                       device: torch.device | str = "cpu") -> SequenceReport:
    """Train `model` in place; return timing, final loss and the snapshots (step 0 included)."""
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    data = torch.Generator().manual_seed(settings.seed)
    snapshots, recent = [(0, _state_copy(model))], []
    n_ctx, d_vocab = size(model, "n_ctx"), size(model, "d_vocab")
    start = time.perf_counter()
    for step in range(1, settings.steps + 1):
        tokens = repeated_segments(settings.batch_size, n_ctx, d_vocab, data,
                                   tuple(settings.segment_lengths)).to(device)
        loss = next_token_loss(model(tokens), tokens).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        recent.append(loss.detach())
        if step % settings.snapshot_every == 0 or step == settings.steps:
            snapshots.append((step, _state_copy(model)))
            final_loss, recent = float(torch.stack(recent).mean()), []
    seconds = time.perf_counter() - start
    model.eval()
    return SequenceReport(seconds, settings.steps / seconds, final_loss, snapshots)


ZOO_TRAINING_KEYS = ("steps", "batch_size", "learning_rate", "weight_decay", "seed",
                     "snapshot_every", "segment_lengths")


def train_zoo_entry(name: str, entry: dict, device: torch.device):
    """The zoo's trainer for a sequence model (zoo.yaml `trainer:`): a freshly built model of the
    entry, trained on repeated segments; returns (model, facts for meta.json,
    {file name: write(path)} for the files stored next to the checkpoint: the snapshots)."""
    from mechinterp.device import seed_everything
    from mechinterp.models.zoo import build_model
    from mechinterp.transformers.snapshots import SNAPSHOTS_NAME, save_snapshots
    settings = SequenceTraining(**{k: entry[k] for k in ZOO_TRAINING_KEYS if k in entry})
    seed_everything(settings.seed)
    model = build_model(entry)
    require_sizes(model)
    report = train_on_sequences(model, settings, device)
    facts = {"metrics": {"final_train_loss": report.final_loss, "steps": settings.steps},
             "class_names": None, "train_seconds": report.train_seconds,
             "steps_per_second": report.steps_per_second,
             "snapshot_steps": [step for step, _ in report.snapshots]}
    return model, facts, {SNAPSHOTS_NAME: lambda path: save_snapshots(path, report.snapshots)}
