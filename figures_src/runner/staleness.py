"""Decide which figures are stale, from content hashes of everything each one depends on.

A figure's inputs are the part of its script that its make function reaches, the code of the
project files that part reaches through imports (comments and docstrings left out) (the engine's and the speaker's own packages, discover.py), the
top-level code of the other project modules importing the script runs (reach.import_time), the inputs of every zoo model it reads (the engine's one
definition, mechinterp/models/inputs.py: zoo entry, dataset, checkpoint, architecture source),
its parameters and the profile. Their hashes are combined into one `input_hash`; the manifest
(talk/public/figures/manifest.json) records it with the hashes of the outputs. A figure is stale
when it has no entry, its input hash changed, or an output is missing or differs from what was
recorded (someone edited or deleted it). The reason is said in words ("checkpoint
../my_weights/net.pt changed (model my-net)").

A zoo model is rebuilt (trained, or its weights imported again) before its figures run: given
models_dir, a figure of a model that is out of date with zoo.yaml is said to be stale for what the
zoo rebuilds it for, with the entry's changed fields ("zoo entry changed (model m: steps 1000 ->
1200; rebuilt first)"), for a trained and an imported model alike, not for a checkpoint on disk
that is about to be replaced (when the runner's last rebuild of it failed with the same inputs,
that is said instead of "rebuilt first"); once a trained model is rebuilt, its new checkpoint is not named
beside the entry, dataset or architecture change that caused it.

    inputs = figure_inputs(spec, profile="full", repo_root=root, models_dir=root / "models")
    manifest = Manifest.load(figures_dir / "manifest.json")
    why = stale_reason(spec, inputs, manifest, figures_dir, root / "models")   # None when up to date
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from figures_src.runner.discover import ENGINE_PACKAGES, FigureSpec, code_file_hash, import_time_hash
from figures_src.runner.paths import STAGING_ROOT
from mechinterp.atomic_file import write_atomic
from mechinterp.models.config import Zoo, ZooError, ZooFileError, is_imported, read_zoo
from mechinterp.models.inputs import (describe_changes, model_inputs as zoo_model_inputs,
                                      model_stale_reasons)
from mechinterp.models.sources import file_hash, value_hash

CHECKPOINT_NAMES = ("checkpoint.safetensors", "checkpoint.pt")
# ends a reason whose figure failed with these very inputs: running it again will not help
FIX_FIRST = ": fix that first"
ZOO_PROBLEM = "zoo: cannot build "   # how a reason from a model's zoo entry problem starts (Zoo.problem_block)
ZOO_CONFIG = "zoo.yaml"


class MissingModelError(FileNotFoundError):
    """A figure reads a model that is not there (or whose zoo.yaml cannot be read)."""


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
    """What the figure reads of model `name`: for a model models_dir/zoo.yaml names, its inputs
    as the zoo defines them; for one placed by hand, its checkpoint and meta config."""
    config = models_dir / ZOO_CONFIG
    if config.is_file():
        try:
            zoo = read_zoo(config)
        except ZooError as error:
            raise MissingModelError(str(error)) from None
        if name in zoo.problems:   # its inputs may not be computable (an unknown dataset)
            raise MissingModelError(f"zoo: {zoo.problem_block(name)}")     # starts with ZOO_PROBLEM
        if name in zoo.entries:
            try:
                return zoo_model_inputs(name, zoo, models_dir)
            except ZooError as error:      # its data cannot be read: the zoo's block, at the line
                from mechinterp.models.failures import failure_block
                raise MissingModelError(failure_block(name, zoo, error)) from None
    checkpoint = model_checkpoint(name, models_dir)
    meta_path = models_dir / name / "meta.json"
    config = json.loads(meta_path.read_text()).get("config") if meta_path.exists() else None
    return {"checkpoint": file_hash(checkpoint), "config": value_hash(config),
            "checkpoint_file": f"{name}/{checkpoint.name}"}


def figure_inputs(spec: FigureSpec, profile: str, repo_root: Path, models_dir: Path) -> dict:
    """Every input of a figure with its hash, plus the combined input_hash."""
    def relative(path: Path) -> str:
        return str(path.resolve().relative_to(repo_root.resolve()))

    inputs = {
        "script": value_hash(spec.script_source) if spec.script_source else file_hash(spec.script),
        "engine": {relative(path): code_file_hash(path) for path in spec.engine_files},
        "models": {name: model_inputs(name, models_dir) for name in spec.models},
        "params": value_hash(spec.params_for(profile)),
        "profile": profile,
        "make": spec.make,
    }
    if spec.import_files:   # only when there are any, so other figures keep their input hash
        inputs["on_import"] = {relative(path): import_time_hash(path) for path in spec.import_files}
    inputs["input_hash"] = value_hash(inputs)
    return inputs


@dataclass
class Manifest:
    """talk/public/figures/manifest.json: one entry per figure that was made successfully, and
    under "failed" the inputs and error of each whose last run failed (its outputs are older)."""
    path: Path
    figures: dict[str, dict] = field(default_factory=dict)
    failed: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); delete it and run "
                             "`make figures` to rebuild every figure") from None
        return cls(path, dict(data.get("figures", {})), dict(data.get("failed", {})))

    def save(self) -> None:
        """Write atomically: a crash mid-write leaves the previous manifest intact."""
        payload = {"version": 1, "figures": dict(sorted(self.figures.items()))}
        if self.failed:
            payload["failed"] = dict(sorted(self.failed.items()))
        write_atomic(self.path, json.dumps(payload, indent=2))


def stale_reason(spec: FigureSpec, inputs: dict, manifest: Manifest, figures_dir: Path,
                 models_dir: Path | None = None) -> str | None:
    """Why this figure must be remade, in words, or None when its recorded outputs are current;
    with models_dir, a zoo-trained model's changes are said as the module docstring says. When its
    last run failed with these very inputs, that failure is said too: running it again won't help."""
    reason = _stale_reason(spec, inputs, manifest, figures_dir, models_dir)
    failed = manifest.failed.get(spec.figure_id, {})
    if reason and failed.get("input_hash") == inputs["input_hash"]:
        return f"{reason}; its last run with these inputs failed ({failed['error']}){FIX_FIRST}"
    return reason


def _stale_reason(spec: FigureSpec, inputs: dict, manifest: Manifest, figures_dir: Path,
                  models_dir: Path | None) -> str | None:
    entry = manifest.figures.get(spec.figure_id)
    if entry is None:
        return "never made"
    if entry.get("inputs", {}).get("input_hash") != inputs["input_hash"]:
        changed = changed_inputs(entry.get("inputs", {}), inputs, models_dir)
        if "params changed" in changed and isinstance(entry.get("params"), dict):
            detail = field_changes(entry["params"], spec.params_for(inputs["profile"]))
            changed[changed.index("params changed")] = f"params changed ({detail})" if detail else "params changed"
        return ", ".join(changed)
    for output, recorded_hash in entry.get("outputs", {}).items():
        target = figures_dir / output
        if not target.exists():
            return f"output {output} missing"
        if file_hash(target) != recorded_hash:
            return f"output {output} changed by hand"
    return None


def changed_inputs(old: dict, new: dict, models_dir: Path | None = None) -> list[str]:
    """What differs, in words: "script changed", "engine mechinterp/hooks.py changed", "imported
    module my_lab/data.py changed" (the speaker's own package),
    "checkpoint ../w.pt changed (model my-net)", ..."""
    changed = [f"{key} changed" for key in ("script", "params", "make") if old.get(key) != new.get(key)]
    if old.get("profile") != new.get("profile"):   # its params are the profile's: that goes without saying
        changed = [f"profile changed from {old.get('profile')} to {new.get('profile')}"] + \
            [phrase for phrase in changed if phrase != "params changed"]
    before, after = old.get("engine", {}), new.get("engine", {})
    changed += [f"{'engine' if path.split('/')[0] in ENGINE_PACKAGES else 'imported module'} {path} changed"
                for path in sorted(set(before) | set(after)) if before.get(path) != after.get(path)]
    before, after = old.get("on_import", {}), new.get("on_import", {})
    changed += [f"top-level code of {path} changed (it runs when the script imports it)"
                for path in sorted(set(before) | set(after)) if before.get(path) != after.get(path)]
    before, after = old.get("models", {}), new.get("models", {})
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            changed.append(f"model {name} {'added' if name in after else 'no longer read'}")
        elif before[name] != after[name]:
            changed += model_changes(name, before[name], after[name], models_dir)
    return changed or ["format changed"]


def model_changes(name: str, old: dict, new: dict, models_dir: Path | None) -> list[str]:
    """What changed of one model a figure reads, in words (see the module docstring): the same
    for a trained and an imported zoo model, which the zoo rebuilds (re-imports) alike."""
    words = describe_changes(old, new) or ["inputs changed"]
    zoo = _zoo_in(models_dir)
    if zoo is None or name not in zoo.entries:
        return [f"{phrase} (model {name})" for phrase in words]
    rebuild = model_stale_reasons(name, zoo, models_dir)
    if rebuild:     # the checkpoint on disk is not the one the figure will read
        detail = entry_difference(name, zoo, models_dir)
        then = ("its rebuild failed (the next `make slides` or `make figures` tries again and prints why); "
                "fix that, and the figure is remade"
                if rebuild_failed(name, zoo, models_dir) else "rebuilt first")
        return [f"{phrase} (model {name}: {detail + '; ' if phrase == 'zoo entry changed' and detail else ''}"
                f"{then})" for phrase in rebuild]
    # rebuilt already: a trained model's new checkpoint is what the change made, not a cause
    causes = [phrase for phrase in words
              if is_imported(zoo.entries[name]) or not phrase.startswith("checkpoint ")]
    return [f"{phrase} (model {name})" for phrase in causes or words]


def _zoo_in(models_dir: Path | None) -> Zoo | None:
    """models_dir/zoo.yaml, or None when there is none or it cannot be read (said elsewhere)."""
    try:
        return _zoo_in_or_raise(models_dir) if models_dir is not None else None
    except ZooError:
        return None


def zoo_file_problem(models_dir: Path) -> ZooFileError | None:
    """The problem of models_dir/zoo.yaml as a whole (not valid YAML, no `models:`), which makes
    every figure that reads a zoo model fail; None when it reads, or there is none."""
    try:
        _zoo_in_or_raise(models_dir)
    except ZooFileError as error:
        return error
    except ZooError:        # one entry's problem: its figures say it
        pass
    return None


def _zoo_in_or_raise(models_dir: Path) -> Zoo | None:
    """models_dir/zoo.yaml (None when there is none); a ZooError when it cannot be read."""
    config = models_dir / ZOO_CONFIG
    return read_zoo(config) if config.is_file() else None


def entry_difference(name: str, zoo: Zoo, models_dir: Path) -> str:
    """'steps 1000 -> 1200': the fields of the zoo entry that differ from the entry the model was
    built from (its meta.json config); '' when that is unknown."""
    try:
        built = json.loads((models_dir / name / "meta.json").read_text()).get("config")
    except (OSError, ValueError):
        return ""
    return field_changes(built, zoo.entries[name]) if isinstance(built, dict) else ""


def field_changes(before: dict, after: dict) -> str:
    """'steps 1000 -> 1200, l1 (none) -> 0.02': the keys whose values differ (the first three)."""
    fields = [f"{key} {before.get(key, '(none)')} -> {after.get(key, '(none)')}"
              for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    return ", ".join(fields[:3]) + (", ..." if len(fields) > 3 else "")


def build_record(models_dir: Path) -> Path:
    """Where the runner keeps which models it failed to rebuild (bookkeeping, out of talk/public/)."""
    digest = hashlib.sha256(str(Path(models_dir).resolve()).encode()).hexdigest()[:16]
    return STAGING_ROOT / "model-builds" / f"failed-{digest}.json"


def record_builds(models_dir: Path, zoo: Zoo, attempted: list[str], failures: dict) -> None:
    """Note the models whose rebuild failed, with the inputs they failed with; forget the others."""
    path = build_record(models_dir)
    try:
        failed = json.loads(path.read_text())
    except (OSError, ValueError):
        failed = {}
    for name in attempted:
        failed.pop(name, None)
        if name in failures:
            with contextlib.suppress(OSError, ZooError, KeyError, ValueError):
                failed[name] = value_hash(zoo_model_inputs(name, zoo, models_dir))
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps(failed, indent=2))


def rebuild_failed(name: str, zoo: Zoo, models_dir: Path) -> bool:
    """True when the runner's last rebuild of the model failed and its inputs are still the same."""
    try:
        recorded = json.loads(build_record(models_dir).read_text()).get(name)
        return recorded is not None and recorded == value_hash(zoo_model_inputs(name, zoo, models_dir))
    except (OSError, ValueError, ZooError, KeyError):
        return False
