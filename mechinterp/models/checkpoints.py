"""Checkpoint files: atomic saving, safe loading, content hashes.

    from mechinterp.models.checkpoints import save_checkpoint, load_state_dict, sha256_file
    save_checkpoint(model.state_dict(), "models/x/checkpoint.safetensors")  # temp file + rename
    state = load_state_dict("speaker/weights.pt")      # safetensors, or torch.load(weights_only)
    digest = sha256_file("models/x/checkpoint.safetensors")

Loading never runs code from the file: safetensors holds only tensors, and torch files go
through torch.load(weights_only=True), which refuses any pickle that names a function or class
outside plain tensors and containers. A refused, truncated or corrupt file raises
CheckpointError naming the file and what to do; nothing on disk is changed by a failed load.
sha256_file is sources.py's file_hash; files are written by mechinterp/atomic_file.py (torch-free).
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from mechinterp.atomic_file import write_atomic
from mechinterp.models.sources import file_hash as sha256_file  # noqa: F401

# Checkpoints that wrap the weights in a dict under one of these keys are unwrapped.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "weights")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message names the file and the fix."""


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                    metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as safetensors (or torch.save for a .pt path), atomically."""
    from safetensors.torch import save
    path = Path(path)
    tensors = {name: tensor.detach().to("cpu").contiguous().clone()
               for name, tensor in state_dict.items()}
    if path.suffix == ".safetensors":
        data = save(tensors, metadata=metadata)
    else:
        import io
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        data = buffer.getvalue()
    write_atomic(path, data)
    return path


def _file_kind(path: Path) -> str:
    """'safetensors', 'zip' (torch.save) or 'pickle' (legacy torch.save, raw pickle), by content."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 0:
        return "safetensors"
    return "pickle"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    try:
        return load_file(str(path))
    except Exception as error:  # SafetensorError has no public import path across versions
        raise CheckpointError(f"{path} is truncated or corrupt ({error}); copy or save it again") \
            from error


def _load_torch(path: Path) -> object:
    try:
        with warnings.catch_warnings():  # raw pickles trip a protocol warning before refusal
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        detail = f"it asks for {named.group(1)}" if named else "it is not a plain tensor checkpoint"
        raise CheckpointError(
            f"{path} was refused: loading it would run code stored in the file ({detail}). "
            "It was not executed. Save the "
            "weights as a plain state_dict (torch.save(model.state_dict(), path)) or as a "
            ".safetensors file and point the zoo at that.") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({str(error).splitlines()[0]}); "
                              "copy or save it again") from error


def _unwrap(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint: itself, or under a usual key like 'state_dict'."""
    if isinstance(loaded, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
        tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(f"{path} holds no state_dict of tensors (found {type(loaded).__name__}); "
                          "save model.state_dict() rather than the model object")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file on the CPU, loaded without running any of its code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a truncated copy?); copy or save it again")
    if _file_kind(path) == "safetensors":
        return _load_safetensors(path)
    return _unwrap(_load_torch(path), path)
