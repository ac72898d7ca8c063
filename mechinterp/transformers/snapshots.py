"""A sequence model's snapshots along training, stored next to its zoo checkpoint.

    save_snapshots(folder / SNAPSHOTS_NAME, report.snapshots)      # the zoo's trainer does this
    for step, model in snapshot_models("attn-only-2l", "models"):  # the phase-change figure
        ...

One safetensors file, models/<name>/snapshots.safetensors, holds every snapshot's state dict
under "step<N>.<parameter>"; the steps are its metadata. Snapshots load into the zoo's own
architecture, so each is an ordinary model in eval mode.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from mechinterp.models.checkpoints import load_state_dict, save_checkpoint

SNAPSHOTS_NAME = "snapshots.safetensors"


def save_snapshots(path: str | os.PathLike, snapshots: list[tuple[int, dict]]) -> Path:
    """Write [(step, state_dict)] as one safetensors file, atomically."""
    tensors = {f"step{step}.{name}": value for step, state in snapshots for name, value in state.items()}
    return save_checkpoint(tensors, path, metadata={"steps": ",".join(str(s) for s, _ in snapshots)})


def read_snapshots(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """[(step, state_dict)] in step order, from a file save_snapshots wrote."""
    grouped: dict[int, dict] = {}
    for key, value in load_state_dict(path).items():
        step, name = key.split(".", 1)
        grouped.setdefault(int(step.removeprefix("step")), {})[name] = value
    return sorted(grouped.items())


def snapshot_models(name: str, models_dir: str | os.PathLike = "models",
                    device: str | torch.device = "cpu") -> Iterator[tuple[int, nn.Module]]:
    """(step, model in eval mode) for each snapshot of the zoo model `name`."""
    from mechinterp.models.zoo import load_meta, load_model, model_dir
    model = load_model(name, models_dir, device=device)
    path = model_dir(name, models_dir) / SNAPSHOTS_NAME
    imported = load_meta(name, models_dir).get("config", {}).get("checkpoint")
    if not path.is_file() and imported:
        raise FileNotFoundError(f"model {name!r} has no training snapshots: it is imported from the checkpoint "
                                f"{imported}, and only a zoo entry that trains its model (`trainer: mechinterp."
                                "transformers.training:train_zoo_entry`, with `snapshot_every:`) saves them; point "
                                "this figure at such a model, or leave the figure out of the deck")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `make models` (or the next `make figures`) rebuilds "
                                f"model {name!r} with it")
    for step, state in read_snapshots(path):
        model.load_state_dict(state)
        yield step, model.eval()
