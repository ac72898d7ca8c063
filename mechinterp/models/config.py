"""models/zoo.yaml: its entries, the line each starts on, and what is wrong with any of them.

Read without torch, so the figure runner can decide what is stale cheaply:

    zoo = read_zoo("models/zoo.yaml")
    zoo.entries["shapes-cnn-a"]      # the entry, with `defaults:` merged in
    zoo.where("shapes-cnn-a")        # "models/zoo.yaml:37", for messages
    zoo.problems                     # {name: what is missing}: that entry alone cannot be built

A file that is not YAML or has no `models:` mapping is a ZooError for the whole zoo; a bad entry
is a problem of that entry only, so the other models still build.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml where present: the runner reads
                                                         # zoo.yaml on every `make figures`

class ZooError(ValueError):
    """A zoo config or model problem; the message names the file or entry and what to do."""


@dataclass
class Zoo:
    path: Path
    entries: dict[str, dict]
    lines: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Where the entries' relative paths (checkpoint:, weights:) start from."""
        return self.path.resolve().parent

    def where(self, name: str) -> str:
        """"models/zoo.yaml:37": the entry's file (relative to here when below) and line."""
        try:
            shown = self.path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            shown = self.path
        line = self.lines.get(name)
        return f"{shown}:{line}" if line else str(shown)


_zoos: dict[tuple[str, int, int], Zoo] = {}


def read_zoo(config_path: str | os.PathLike = "models/zoo.yaml") -> Zoo:
    """The zoo config (cached on path, size and mtime: the runner asks once per figure)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise ZooError(f"zoo config {config_path} does not exist")
    stat = config_path.stat()
    key = (str(config_path), stat.st_size, stat.st_mtime_ns)
    if key not in _zoos:
        _zoos[key] = _parse_zoo(config_path)
    return _zoos[key]


def _parse_zoo(config_path: Path) -> Zoo:
    text = config_path.read_text()
    try:
        document = yaml.load(text, Loader=LOADER) or {}
    except yaml.YAMLError as error:
        raise ZooError(f"{config_path} is not valid YAML: {error}") from error
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict) or not models:
        raise ZooError(f"{config_path} needs a top-level 'models:' mapping of name -> entry")
    defaults = document.get("defaults") or {}
    zoo = Zoo(config_path, {}, _entry_lines(text))
    for name, entry in models.items():
        if not isinstance(entry, dict) and entry is not None:
            zoo.problems[str(name)] = f"model {name!r} must be a mapping of fields (see the comments)"
            continue
        zoo.entries[str(name)] = {**defaults, **(entry or {})}
        problem = entry_problem(str(name), zoo.entries[str(name)])
        if problem:
            zoo.problems[str(name)] = problem
    return zoo


def _entry_lines(text: str) -> dict[str, int]:
    """{model name: 1-based line of its key under `models:`}, from yaml's node marks."""
    root = yaml.compose(text, Loader=LOADER)
    for key, value in getattr(root, "value", []):
        if key.value == "models" and isinstance(value, yaml.MappingNode):
            return {str(name.value): name.start_mark.line + 1 for name, _ in value.value}
    return {}


def in_profile(entry: dict, profile: str) -> bool:
    """Whether a run of `profile` builds this entry: `profiles: [full]` leaves it out of quick runs;
    a gpu run is the full one plus the GPU's own models."""
    wanted = {"gpu": {"gpu", "full"}}.get(profile, {profile})
    return bool(wanted & set(entry.get("profiles", wanted)))


def entry_problem(name: str, entry: dict) -> str | None:
    """What a zoo entry lacks, or None when it names enough to build."""
    if "torchvision" in entry and "weights" in entry:
        required = ()
    elif "torchvision" in entry:     # a torchvision architecture trained here
        required = ("dataset", "epochs")
    elif "trainer" in entry:
        required = ("architecture", "trainer", "steps")
    elif "checkpoint" in entry:
        required = ("architecture", "checkpoint")
    else:
        required = ("architecture", "dataset", "epochs")
    missing = [key for key in required if key not in entry]
    if not missing:
        return None
    return (f"model {name!r} lacks {', '.join(missing)} (a trained model needs architecture "
            "(or torchvision), dataset, epochs; an imported one architecture and checkpoint, or "
            "torchvision and weights)")


def read_zoo_config(config_path: str | os.PathLike = "models/zoo.yaml") -> dict[str, dict]:
    """{model name: entry}; any entry's problem is a ZooError naming its file:line."""
    zoo = read_zoo(config_path)
    for name, problem in zoo.problems.items():
        raise ZooError(f"{zoo.where(name)}: {problem}")
    return zoo.entries


def is_imported(entry: dict) -> bool:
    """True for the speaker's own weights (nothing to train); a `torchvision:` entry without
    `weights:` is trained here like a built-in architecture."""
    return "checkpoint" in entry or "weights" in entry


def source_path(entry: dict, config_dir: Path) -> Path:
    """The speaker's weights file the entry names (relative to the folder of zoo.yaml)."""
    raw = Path(os.path.expanduser(str(entry.get("checkpoint") or entry.get("weights"))))
    return raw if raw.is_absolute() else (config_dir / raw).resolve()
