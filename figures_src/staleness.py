"""Decide which figures are stale, from content hashes of everything each one depends on.

A figure's inputs are the part of its script that its make function reaches, the engine files
that part reaches through imports, the checkpoint and
config of every model it reads, its parameters and the profile. Their hashes are combined into
one `input_hash`; the manifest (talk/public/figures/manifest.json) records it with the hashes of
the outputs. A figure is stale when it has no entry, its input hash changed, or an output is
missing or differs from what was recorded (someone edited or deleted it).

    inputs = figure_inputs(spec, profile="full", repo_root=root, models_dir=root / "models")
    manifest = Manifest.load(figures_dir / "manifest.json")
    why = stale_reason(spec, inputs, manifest, figures_dir)    # None when up to date
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from figures_src.discover import FigureSpec

CHECKPOINT_NAMES = ("checkpoint.safetensors", "checkpoint.pt")
_file_hash_cache: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (cached on path, size and mtime within one process)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _file_hash_cache[key] = digest.hexdigest()
    return _file_hash_cache[key]


def data_hash(value) -> str:
    """sha256 of a JSON-able value in canonical form (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class MissingModelError(FileNotFoundError):
    """A figure reads a zoo model that has not been trained (or placed) yet."""


def model_checkpoint(name: str, models_dir: Path) -> Path:
    """The checkpoint file of zoo model `name`: models/<name>/checkpoint.*, or the file meta.json names."""
    folder = models_dir / name
    for candidate in CHECKPOINT_NAMES:
        if (folder / candidate).exists():
            return folder / candidate
    meta_path = folder / "meta.json"
    if meta_path.exists():
        named = json.loads(meta_path.read_text()).get("checkpoint_path")
        if named and Path(named).exists():
            return Path(named)
    raise MissingModelError(f"model {name!r} has no checkpoint in {folder}: run `make models` "
                            f"(or check models/zoo.yaml names {name!r})")


def model_inputs(name: str, models_dir: Path) -> dict:
    """{"checkpoint": hash of the weights, "config": hash of the training config}."""
    checkpoint = model_checkpoint(name, models_dir)
    meta_path = models_dir / name / "meta.json"
    config = json.loads(meta_path.read_text()).get("config") if meta_path.exists() else None
    return {"checkpoint": file_hash(checkpoint), "config": data_hash(config)}


def figure_inputs(spec: FigureSpec, profile: str, repo_root: Path, models_dir: Path) -> dict:
    """Every input of a figure with its hash, plus the combined input_hash."""
    def relative(path: Path) -> str:
        return str(path.resolve().relative_to(repo_root.resolve()))

    inputs = {
        "script": data_hash(spec.script_source) if spec.script_source else file_hash(spec.script),
        "engine": {relative(path): file_hash(path) for path in spec.engine_files},
        "models": {name: model_inputs(name, models_dir) for name in spec.models},
        "params": data_hash(spec.params_for(profile)),
        "profile": profile,
        "make": spec.make,
    }
    inputs["input_hash"] = data_hash(inputs)
    return inputs


@dataclass
class Manifest:
    """talk/public/figures/manifest.json: one entry per figure that was made successfully."""
    path: Path
    figures: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); delete it and run "
                             "`make figures` to rebuild every figure") from None
        return cls(path, dict(data.get("figures", {})))

    def save(self) -> None:
        """Write atomically: a crash mid-write leaves the previous manifest intact."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": 1, "figures": dict(sorted(self.figures.items()))}
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(payload, handle, indent=2)
        os.replace(handle.name, self.path)


def stale_reason(spec: FigureSpec, inputs: dict, manifest: Manifest, figures_dir: Path) -> str | None:
    """Why this figure must be remade, or None when its recorded outputs are current."""
    entry = manifest.figures.get(spec.figure_id)
    if entry is None:
        return "never made"
    if entry.get("inputs", {}).get("input_hash") != inputs["input_hash"]:
        return "inputs changed: " + ", ".join(changed_inputs(entry.get("inputs", {}), inputs))
    for output, recorded_hash in entry.get("outputs", {}).items():
        target = figures_dir / output
        if not target.exists():
            return f"output {output} missing"
        if file_hash(target) != recorded_hash:
            return f"output {output} changed by hand"
    return None


def changed_inputs(old: dict, new: dict) -> list[str]:
    """Names of the inputs whose hashes differ, for a readable stale reason."""
    changed = [key for key in ("script", "params", "profile", "make") if old.get(key) != new.get(key)]
    for group in ("engine", "models"):
        before, after = old.get(group, {}), new.get(group, {})
        label = "model" if group == "models" else "engine"
        changed += [f"{label} {name}" for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    return changed or ["format"]
