"""models/zoo.yaml: its entries, the line each starts on, and what is wrong with any of them.

Read without torch, so the figure runner can decide what is stale cheaply:

    zoo = read_zoo("models/zoo.yaml")
    zoo.entries["shapes-cnn-a"]      # the entry, with `defaults:` merged in
    zoo.where("shapes-cnn-a")        # "models/zoo.yaml:37", for messages
    zoo.problems                     # {name: what is wrong}: that entry alone cannot be built

A file that is not YAML, has no `models:` mapping, or a top-level key other than `models:` and
`defaults:` (or one of them twice) is a ZooError for the whole zoo. A bad entry is a problem of
that entry only, so the other models still build: fields missing, unknown (with the nearest
known one), of the wrong type or naming an unknown dataset (fields.py), a key given twice, a name
defined twice; each line of it names the zoo.yaml line of the field:

    zoo.problems["my-net"]   # "models/zoo.yaml:41: dataset 'mnist5k' is not one of ... (did you mean mnist-5k?)"
    zoo.problem_block("my-net")   # "cannot build 'my-net' (models/zoo.yaml:37)\n  models/zoo.yaml:41: ..."
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mechinterp.models.fields import FIELDS, field_problems
from mechinterp.names import did_you_mean

TOP_LEVEL_KEYS = ("defaults", "models")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml where present: the runner reads
                                                         # zoo.yaml on every `make figures`

class ZooError(ValueError):
    """A zoo config or model problem; the message names the file or entry and what to do."""


class ZooFileError(ZooError):
    """A problem of the whole zoo.yaml (not valid YAML, no `models:`): no model can be read. The
    message starts with path:line:column; `where` holds them apart."""

    def __init__(self, path: Path, line: int, column: int, message: str):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.where, self.message = (path, line, column), message


class FieldError(ZooError):
    """A problem of one field of an entry found when the model is built (a layer it does not
    have, an input_shape its forward refuses): reported after that field's zoo.yaml line."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field_name = field_name


@dataclass
class Zoo:
    path: Path
    entries: dict[str, dict]
    lines: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    field_lines: dict[str, dict[str, int]] = field(default_factory=dict)   # `defaults:` included
    shown_as: str | None = None   # how messages name the file: a worker's copy names the runner's

    @property
    def shown(self) -> str:
        """The file as messages name it: relative to here when below, else as given."""
        return self.shown_as or str(_shown(self.path))

    @property
    def folder(self) -> Path:
        """Where the entries' relative paths (checkpoint:, weights:) start from."""
        return self.path.resolve().parent

    def where(self, name: str, field_name: str | None = None) -> str:
        """"models/zoo.yaml:37": the file (relative to here when below) and the line of the entry,
        or of its field `field_name` when given."""
        line = self.field_lines.get(name, {}).get(field_name) or self.lines.get(name)
        return f"{self.shown}:{line}" if line else self.shown

    def problem_block(self, name: str, message: str | None = None) -> str:
        """"cannot build 'x' (models/zoo.yaml:37)" and, indented below, the message (default:
        the entry's problems)."""
        return f"cannot build {name!r} ({self.where(name)})\n  {message or self.problems[name]}"


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


_zoos: dict[tuple, Zoo] = {}


def read_zoo(config_path: str | os.PathLike = "models/zoo.yaml", shown_as: str | None = None) -> Zoo:
    """The zoo config (cached on path, size and mtime: the runner asks once per figure); messages
    name the file as `shown_as` when given (a Dask worker's copy of the runner's zoo.yaml)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise ZooError(f"zoo config {config_path} does not exist")
    stat = config_path.stat()
    key = (str(config_path), stat.st_size, stat.st_mtime_ns, shown_as)
    if key not in _zoos:
        _zoos[key] = _parse_zoo(config_path, shown_as)
    return _zoos[key]


def _parse_zoo(config_path: Path, shown_as: str | None = None) -> Zoo:
    root, document = _load_yaml(config_path)
    nodes = _top_level_nodes(root, config_path)
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict) or not models:
        raise ZooFileError(_shown(config_path), 1, 1, "zoo.yaml needs a top-level 'models:' mapping of name -> entry")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ZooFileError(_shown(config_path), nodes['defaults'][0].start_mark.line + 1, 1, "defaults "
                           "must be a mapping of field: value that every entry starts from")
    zoo = Zoo(config_path, {}, shown_as=shown_as)
    definitions = _definitions(zoo, nodes["models"][1], _key_lines(nodes.get("defaults", (None, None))[1]))
    for name, entry in models.items():
        name = str(name)
        if isinstance(entry, dict) or entry is None:
            zoo.entries[name] = {**defaults, **(entry or {})}
        problems = _entry_problems(zoo, name, entry, definitions.get(name, []))
        if problems:
            zoo.problems[name] = "\n  ".join(problems)
    return zoo


def _load_yaml(config_path: Path):
    """(root node, document): parsed once by libyaml where present, with the nodes' lines."""
    loader = LOADER(config_path.read_text())
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else {})
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = " ".join(filter(None, [getattr(error, "context", None), getattr(error, "problem", None)]))
        raise ZooFileError(_shown(config_path), mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                           f"not valid YAML: {problem or error}; check this line's indentation, colons and "
                           "quotes, and the line above") from error
    finally:
        loader.dispose()


def _top_level_nodes(root, config_path: Path) -> dict[str, tuple]:
    """{"models": (key node, value node), "defaults": ...}; a key given twice or one the zoo does
    not read is a ZooError naming its line, as is a key given twice inside `defaults:`."""
    if not isinstance(root, yaml.MappingNode):
        return {}
    shown = _shown(config_path)
    for key, first, line in _repeated_keys(root, deep=False):
        raise ZooError(f"{shown}:{line}: {key!r} is given twice (first at line {first}): merge them")
    nodes = {str(key.value): (key, value) for key, value in root.value}
    for key, (key_node, _) in nodes.items():
        if key not in TOP_LEVEL_KEYS:
            raise ZooError(f"{shown}:{key_node.start_mark.line + 1}: {key!r} is not a section of a zoo "
                           f"config{did_you_mean(key, TOP_LEVEL_KEYS)}: it has {' and '.join(TOP_LEVEL_KEYS)}")
    for key, first, line in _repeated_keys(nodes.get("defaults", (None, None))[1]):
        raise ZooError(f"{shown}:{line}: {key!r} is given twice in defaults (first at line {first}): "
                       "delete one")
    return nodes


def _repeated_keys(node, deep: bool = True) -> list[tuple[str, int, int]]:
    """(key, first line, line) of each key a mapping repeats, in `node` (and below it when deep):
    YAML keeps the last silently."""
    if isinstance(node, yaml.SequenceNode) and deep:
        return [repeat for item in node.value for repeat in _repeated_keys(item)]
    if not isinstance(node, yaml.MappingNode):
        return []
    seen, repeats = {}, []
    for key, value in node.value:
        line = key.start_mark.line + 1
        if isinstance(key, yaml.ScalarNode) and key.value in seen and key.value != "<<":
            repeats.append((key.value, seen[key.value], line))
        seen.setdefault(key.value, line)
        repeats += _repeated_keys(value) if deep else []
    return repeats


def _key_lines(node) -> dict[str, int]:
    """{key: 1-based line} of a mapping node's keys (the first of a repeated one)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines = {}
    for key, _ in node.value:
        lines.setdefault(str(key.value), key.start_mark.line + 1)
    return lines


def _definitions(zoo: Zoo, models_node, default_lines: dict[str, int]) -> dict[str, list]:
    """{name: [its entry node, ...]} (two for a name defined twice); fills the zoo's lines."""
    definitions: dict[str, list] = {}
    for key, value in getattr(models_node, "value", []):
        name = str(key.value)
        definitions.setdefault(name, []).append((key.start_mark.line + 1, value))
        zoo.lines.setdefault(name, key.start_mark.line + 1)
        zoo.field_lines.setdefault(name, {**default_lines, **_key_lines(value)})
    return definitions


def _entry_problems(zoo: Zoo, name: str, entry, definitions: list) -> list[str]:
    """What is wrong with one entry, one line each (see fields.py), each naming its zoo.yaml line."""
    shown = zoo.shown
    if len(definitions) > 1:
        lines = " and ".join(f"{shown}:{line}" for line, _ in definitions)
        return [f"model {name!r} is defined twice, at {lines}: rename one of them or delete one"]
    if name not in zoo.entries:
        return [f"{zoo.where(name)}: model {name!r} must be a mapping of fields, e.g. {{architecture: "
                f"SmallCNN, dataset: shapes, epochs: 4}}; it is {entry!r} (the comments at the top "
                "of zoo.yaml list the fields)"]
    problems = [f"{shown}:{line}: {key!r} is given twice in this entry (first at line {first}): "
                "delete one" for _, node in definitions for key, first, line in _repeated_keys(node)]
    problems += field_problems(zoo.entries[name], lambda key: zoo.where(name, key))
    if all(key in FIELDS for key in zoo.entries[name]):   # else the misspelt field is the news
        problems += filter(None, [entry_problem(name, zoo.entries[name])])
    return problems


def in_profile(entry: dict, profile: str) -> bool:
    """Whether a run of `profile` builds this entry: `profiles: [full]` leaves it out of quick runs;
    a gpu run is the full one plus the GPU's own models."""
    wanted = {"gpu": {"gpu", "full"}}.get(profile, {profile})
    return bool(wanted & set(entry.get("profiles", wanted)))


def trains_on(entry: dict, device) -> bool:
    """False for an entry whose `devices:` (e.g. [cuda]: GoogLeNet, too slow for a CPU) leave out
    this device (a torch.device or its type, "cpu"); the zoo never trains it there, though it
    loads one built elsewhere."""
    device_type = getattr(device, "type", str(device))
    return device_type in entry.get("devices", [device_type])


def buildable(zoo: Zoo, names: list[str], device) -> list[str]:
    """The names among `names` that a build of every model on `device` takes: imports, and the
    entries this device trains; each other one is skipped, saying so (the zoo's one skip rule,
    here and on a cluster). A name with no entry (a broken one) is kept, to be reported."""
    device_type = getattr(device, "type", str(device))
    kept = [name for name in names if name not in zoo.entries or is_imported(zoo.entries[name])
            or trains_on(zoo.entries[name], device_type)]
    for name in sorted(set(names) - set(kept)):
        print(f"zoo: skipping {name} (devices: {zoo.entries[name]['devices']} in {zoo.where(name)}; "
              f"this is {device_type})", file=sys.stderr, flush=True)
    return kept


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
    for name in zoo.problems:
        raise ZooError(zoo.problem_block(name))
    return zoo.entries


def is_imported(entry: dict) -> bool:
    """True for the speaker's own weights (nothing to train); a `torchvision:` entry without
    `weights:` is trained here like a built-in architecture."""
    return "checkpoint" in entry or "weights" in entry


def source_path(entry: dict, config_dir: Path) -> Path:
    """The speaker's weights file the entry names (relative to the folder of zoo.yaml)."""
    raw = Path(os.path.expanduser(str(entry.get("checkpoint") or entry.get("weights"))))
    return raw if raw.is_absolute() else (config_dir / raw).resolve()
