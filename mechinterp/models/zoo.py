"""The zoo: every model the talk uses, named in models/zoo.yaml, trained or imported on demand.

    python -m mechinterp.models.zoo [--names shapes-cnn-a ...] [--device cpu] [--force]

    from mechinterp.models.zoo import train_zoo, load_model, load_meta, model_hashes
    train_zoo("models/zoo.yaml", "models")         # trains only the missing or stale models
    model = load_model("shapes-cnn-a", "models")   # eval mode, on pick_device()
    load_meta("shapes-cnn-a", "models")["metrics"]["test_accuracy"]

Each model lives in models/<name>/: checkpoint.safetensors and meta.json (config, config_hash,
data_hash, metrics.test_accuracy on the held-out split, train_seconds, device, torch_version,
checkpoint_sha256). A model is stale when its checkpoint or meta is missing, its config entry
changed (config_hash) or its dataset changed (data_hash). Figures depend on a model through
model_hashes(), so retraining or replacing a model marks exactly its figures stale.

A zoo entry either trains a model:
    shapes-cnn-a: {architecture: SmallCNN, kwargs: {width: 16}, dataset: shapes, seed: 0,
                   epochs: 4, batch_size: 64, learning_rate: 0.003}
or imports the speaker's own weights (paths relative to the folder of zoo.yaml):
    my-net: {architecture: "my_package.nets:MyNet", kwargs: {...}, checkpoint: ../my_net.pt,
             dataset: shapes}
    my-resnet: {torchvision: resnet18, weights: ../resnet18.pth, kwargs: {num_classes: 10},
                input_shape: [3, 224, 224], feature_layers: [layer1, layer2, layer3, layer4]}
Optional layer descriptions (feature_layers, conv_layers, classifier_layer, input_shape,
class_names) fill in what the architecture does not define itself. Weights are always read
without running code from the file (see checkpoints.py).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml
from torch import nn

from mechinterp.data import load_dataset
from mechinterp.data.files import data_root as data_directory
from mechinterp.device import pick_device, seed_everything
from mechinterp.hooks import layer_names
from mechinterp.models.architectures import ARCHITECTURES
from mechinterp.models.checkpoints import (atomic_write_bytes, load_state_dict, save_checkpoint,
                                           sha256_file)
from mechinterp.models.training import TrainingSettings, evaluate, train_classifier

CPU_TRAINING_THREADS = 1
TRAINING_VERSION = 1          # bump when training changes in a way the config does not show
CHECKPOINT_NAME = "checkpoint.safetensors"
META_NAME = "meta.json"
LAYER_DESCRIPTIONS = ("feature_layers", "conv_layers", "classifier_layer", "input_shape")
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "seed", "batchnorm",
                 "optimizer")


class ZooError(ValueError):
    """A zoo config or model problem; the message names the file or entry and what to do."""


# --- the config ---

def read_zoo_config(config_path: str | os.PathLike = "models/zoo.yaml") -> dict[str, dict]:
    """{model name: entry} from the YAML file; `defaults` are merged into every entry."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise ZooError(f"zoo config {config_path} does not exist")
    try:
        document = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ZooError(f"{config_path} is not valid YAML: {error}") from error
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise ZooError(f"{config_path} needs a top-level 'models:' mapping of name -> entry")
    defaults = document.get("defaults") or {}
    entries = {}
    for name, entry in models.items():
        entries[str(name)] = {**defaults, **(entry or {})}
        _check_entry(str(name), entries[str(name)], config_path)
    return entries


def _check_entry(name: str, entry: dict, config_path: Path) -> None:
    if "torchvision" in entry:
        required = ("torchvision", "weights")
    elif "checkpoint" in entry:
        required = ("architecture", "checkpoint")
    else:
        required = ("architecture", "dataset", "epochs")
    missing = [key for key in required if key not in entry]
    if missing:
        raise ZooError(f"{config_path}: model {name!r} lacks {', '.join(missing)} (a trained model "
                       "needs architecture, dataset, epochs; an imported one architecture and "
                       "checkpoint, or torchvision and weights)")


def is_imported(entry: dict) -> bool:
    """True for the speaker's own weights (nothing to train)."""
    return "checkpoint" in entry or "torchvision" in entry


def _source_path(entry: dict, config_dir: Path) -> Path:
    raw = Path(os.path.expanduser(str(entry.get("checkpoint") or entry.get("weights"))))
    return raw if raw.is_absolute() else (config_dir / raw).resolve()


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_hash(entry: dict, source_sha256: str | None = None) -> str:
    """Hash of the entry (and of the imported weights' bytes, for the speaker's own model)."""
    payload = {"entry": entry, "training_version": TRAINING_VERSION, "source": source_sha256}
    return _sha256_text(json.dumps(payload, sort_keys=True, default=str))


_DATA_HASHES: dict[str, str] = {}
DATA_CODE = Path(__file__).resolve().parent.parent / "data"
DATA_HASH_CACHE = ".data-hashes.json"


def data_signature(entry: dict) -> str:
    """What the dataset is a function of: the generating code, its options, and the user's files.

    Procedural data is deterministic from code and options, and user files are identified by
    name, size and modification time, so an unchanged signature means unchanged bytes."""
    digest = hashlib.sha256(json.dumps([entry["dataset"], entry.get("dataset_options"),
                                        entry.get("data_root")], sort_keys=True).encode())
    for source in sorted(DATA_CODE.glob("*.py")):
        digest.update(source.read_bytes())
    user_dir = data_directory(entry.get("data_root"))
    if user_dir.is_dir():
        for path in sorted(p for p in user_dir.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(user_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def data_hash(entry: dict, models_dir: str | os.PathLike | None = None) -> str | None:
    """Hash of the entry's dataset (both splits, labels and class names); None without one.

    Hashing means generating the data (seconds), so the result is cached in
    models/.data-hashes.json under the data's signature: `make models` with nothing stale is fast."""
    if "dataset" not in entry:
        return None
    signature = data_signature(entry)
    cache_path = Path(models_dir) / DATA_HASH_CACHE if models_dir is not None else None
    cache = _read_json(cache_path) if cache_path else {}
    if signature in cache:
        return cache[signature]
    if signature not in _DATA_HASHES:
        digest = hashlib.sha256(signature.encode())
        for split in ("train", "test"):
            data = _load_split(entry, split)
            digest.update(data.images.numpy().tobytes())
            digest.update(data.labels.numpy().tobytes())
            digest.update(json.dumps(data.class_names).encode())
        _DATA_HASHES[signature] = digest.hexdigest()
    if cache_path and cache_path.parent.is_dir():
        atomic_write_bytes(cache_path, json.dumps({**cache, signature: _DATA_HASHES[signature]}, indent=1).encode())
    return _DATA_HASHES[signature]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _load_split(entry: dict, split: str):
    return load_dataset(entry["dataset"], split, entry.get("data_root"),
                        **(entry.get("dataset_options") or {}))


# --- building models ---

def resolve_architecture(spec: str) -> type:
    """A class from the built-in names (SmallCNN, ...) or an import path 'package.module:Class'."""
    if spec in ARCHITECTURES:
        return ARCHITECTURES[spec]
    if ":" not in spec:
        raise ZooError(f"unknown architecture {spec!r}: use one of {', '.join(ARCHITECTURES)} or "
                       "an import path 'package.module:ClassName'")
    module_name, class_name = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ZooError(f"cannot import {module_name!r} for architecture {spec!r} ({error}); make "
                       "the package importable (pip install -e it, or add its folder to "
                       "PYTHONPATH)") from error
    if not hasattr(module, class_name):
        raise ZooError(f"module {module_name!r} has no {class_name!r} (architecture {spec!r})")
    return getattr(module, class_name)


def _torchvision_model(name: str, kwargs: dict) -> nn.Module:
    try:
        import torchvision.models
    except ImportError as error:
        raise ZooError(f"zoo entry asks for torchvision model {name!r} but torchvision does not "
                       "import here; install torchvision or use an import-path architecture") from error
    return torchvision.models.get_model(name, weights=None, **kwargs)


def describe_layers(model: nn.Module, entry: dict) -> nn.Module:
    """Set feature_layers, conv_layers, classifier_layer, input_shape: from the entry if given,
    else from the model's own attributes, else guessed from its modules."""
    for key in LAYER_DESCRIPTIONS:
        if key in entry:
            value = entry[key]
            setattr(model, key, tuple(value) if key == "input_shape" else value)
    if not hasattr(model, "conv_layers"):
        model.conv_layers = layer_names(model, (nn.Conv2d,))
    if not hasattr(model, "feature_layers"):
        model.feature_layers = list(model.conv_layers)
    if not hasattr(model, "classifier_layer"):
        linears = layer_names(model, (nn.Linear,))
        model.classifier_layer = linears[-1] if linears else None
    if not hasattr(model, "input_shape"):
        model.input_shape = (3, 224, 224) if "torchvision" in entry else None
    return model


def build_model(entry: dict) -> nn.Module:
    """A freshly initialised model of the entry's architecture (seed first for determinism)."""
    kwargs = dict(entry.get("kwargs") or {})
    if "torchvision" in entry:
        model = _torchvision_model(entry["torchvision"], kwargs)
    else:
        model = resolve_architecture(entry["architecture"])(**kwargs)
    return describe_layers(model, entry)


# --- files of one model ---

def model_dir(name: str, models_dir: str | os.PathLike = "models") -> Path:
    return Path(models_dir) / name


def load_meta(name: str, models_dir: str | os.PathLike = "models") -> dict:
    """The model's meta.json, or a clear error saying how to train it."""
    path = model_dir(name, models_dir) / META_NAME
    if not path.is_file():
        present = sorted(p.parent.name for p in Path(models_dir).glob(f"*/{META_NAME}"))
        raise FileNotFoundError(
            f"zoo model {name!r} is not in {models_dir}/ (no {path}): train it with `make models` "
            f"or `python -m mechinterp.models.zoo --names {name}`. Present: {', '.join(present) or 'none'}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ZooError(f"{path} is corrupt ({error}); retrain with --force --names {name}") from error


def load_model(name: str, models_dir: str | os.PathLike = "models", device=None) -> nn.Module:
    """A zoo model in eval mode on `device` (default pick_device()), with .class_names set."""
    meta = load_meta(name, models_dir)
    model = build_model(meta["config"])
    state = load_state_dict(model_dir(name, models_dir) / CHECKPOINT_NAME)
    _load_weights(model, state, model_dir(name, models_dir) / CHECKPOINT_NAME)
    model.class_names = meta.get("class_names")
    model.zoo_name = name
    return model.to(as_device(device)).eval()


def as_device(device) -> torch.device:
    """None -> pick_device(); 'cpu' / 'cuda' / 'mps' / 'auto' -> pick_device(it); 'cuda:1' as is."""
    if isinstance(device, torch.device):
        return device
    if device is None or ":" not in str(device):
        return pick_device(device)
    return torch.device(device)


def _load_weights(model: nn.Module, state: dict, path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ZooError(f"the weights in {path} do not fit {type(model).__name__}: "
                       f"{str(error).splitlines()[0]} ... check the architecture and kwargs "
                       "in zoo.yaml") from error


def model_hashes(name: str, models_dir: str | os.PathLike = "models") -> dict[str, str]:
    """{"checkpoint": sha256 of the checkpoint file, "config": the config hash}: what figures
    depend on."""
    meta = load_meta(name, models_dir)
    return {"checkpoint": sha256_file(model_dir(name, models_dir) / CHECKPOINT_NAME),
            "config": meta["config_hash"]}


def stale_reason(name: str, entry: dict, models_dir, config_dir: Path) -> str | None:
    """Why the model must be (re)built, or None when it is up to date."""
    folder = model_dir(name, models_dir)
    checkpoint, meta_path = folder / CHECKPOINT_NAME, folder / META_NAME
    if not checkpoint.is_file() or not meta_path.is_file():
        return "not built yet"
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return "meta.json is unreadable"
    if meta.get("config_hash") != _entry_hash(entry, config_dir):
        return "config changed"
    if meta.get("data_hash") != data_hash(entry, models_dir):
        return "dataset changed"
    if meta.get("checkpoint_sha256") != sha256_file(checkpoint):
        return "checkpoint does not match its meta.json"
    return None


def _entry_hash(entry: dict, config_dir: Path) -> str:
    if not is_imported(entry):
        return config_hash(entry)
    source = _source_path(entry, config_dir)
    if not source.is_file():
        raise FileNotFoundError(f"the zoo names {source} (checkpoint/weights) but it does not exist")
    return config_hash(entry, sha256_file(source))


# --- building: train or import one model, then write its files ---

def train_one(name: str, entry: dict, device: torch.device) -> tuple[nn.Module, dict]:
    """Train a fresh model from its entry; return it and the measured part of its meta."""
    settings = TrainingSettings(**{k: entry[k] for k in TRAINING_KEYS if k in entry})
    seed_everything(settings.seed)
    model = build_model(entry)
    train_data = _load_split(entry, "train")
    report = train_classifier(model, train_data, settings, device, description=name)
    test_data = _load_split(entry, "test")
    test = evaluate(model, test_data, device)
    metrics = {"test_accuracy": test["accuracy"], "test_accuracy_per_class": test["per_class"],
               "train_accuracy": evaluate(model, train_data, device)["accuracy"],
               "final_train_loss": report.final_loss,
               "train_images": len(train_data), "test_images": len(test_data)}
    return model, {"metrics": metrics, "class_names": train_data.class_names,
                   "train_seconds": report.train_seconds,
                   "images_per_second": report.images_per_second}


def import_one(name: str, entry: dict, device: torch.device, config_dir: Path) -> tuple[nn.Module, dict]:
    """Load the speaker's own weights into their architecture; measure it if a dataset is named."""
    source = _source_path(entry, config_dir)
    model = build_model(entry)
    _load_weights(model, load_state_dict(source), source)
    model.to(device).eval()
    facts = {"source": str(source), "source_sha256": sha256_file(source), "train_seconds": 0.0,
             "class_names": entry.get("class_names"), "metrics": {}}
    if "dataset" in entry:
        test = _load_split(entry, "test")
        result = evaluate(model, test, device)
        facts["metrics"] = {"test_accuracy": result["accuracy"],
                            "test_accuracy_per_class": result["per_class"],
                            "test_images": len(test)}
        facts["class_names"] = facts["class_names"] or test.class_names
    return model, facts


def write_model(name: str, entry: dict, model: nn.Module, facts: dict, models_dir,
                config_dir: Path, device: torch.device) -> dict:
    """Write checkpoint then meta.json, each atomically; return the meta."""
    folder = model_dir(name, models_dir)
    checkpoint = save_checkpoint(model.state_dict(), folder / CHECKPOINT_NAME)
    meta = {"name": name, "config": entry, "config_hash": _entry_hash(entry, config_dir),
            "data_hash": data_hash(entry, models_dir), **facts, "device": str(device),
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
            "checkpoint": CHECKPOINT_NAME, "checkpoint_sha256": sha256_file(checkpoint),
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    atomic_write_bytes(folder / META_NAME, (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return meta


def train_zoo(config_path: str | os.PathLike = "models/zoo.yaml",
              models_dir: str | os.PathLike = "models", names=None, device=None,
              force: bool = False, threads: int = CPU_TRAINING_THREADS) -> dict[str, dict]:
    """Train (or import) the zoo's missing or stale models; return {name: meta} for `names`.

    On the CPU training uses `threads` torch threads (default 1: the weights are then the same
    on every machine, and these small models gain little from more threads)."""
    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        return _build_stale(config_path, models_dir, names, device, force)
    finally:
        torch.set_num_threads(previous_threads)


def _build_stale(config_path, models_dir, names, device, force) -> dict[str, dict]:
    entries = read_zoo_config(config_path)
    config_dir = Path(config_path).resolve().parent
    unknown = sorted(set(names or []) - set(entries))
    if unknown:
        raise ZooError(f"{config_path} has no model {', '.join(map(repr, unknown))}; "
                       f"it names {', '.join(entries)}")
    device = as_device(device)
    metas = {}
    for name in names or list(entries):
        entry = entries[name]
        reason = "forced" if force else stale_reason(name, entry, models_dir, config_dir)
        if reason is None:
            metas[name] = load_meta(name, models_dir)
            continue
        print(f"zoo: building {name} ({reason}) on {device}", file=sys.stderr, flush=True)
        model, facts = (import_one(name, entry, device, config_dir) if is_imported(entry)
                        else train_one(name, entry, device))
        metas[name] = write_model(name, entry, model, facts, models_dir, config_dir, device)
        _print_summary(name, metas[name])
    return metas


def _print_summary(name: str, meta: dict) -> None:
    accuracy = meta["metrics"].get("test_accuracy")
    shown = f"{accuracy:.4f}" if accuracy is not None else "n/a"
    print(f"zoo: {name}: test accuracy {shown}, {meta['train_seconds']:.1f} s",
          file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train the missing or stale models of the zoo.")
    parser.add_argument("--config", default="models/zoo.yaml")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--names", nargs="+", help="only these models (default: all)")
    parser.add_argument("--device", help="cpu, cuda, mps or auto (default: $MECHINTERP_DEVICE or auto)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--threads", type=int, default=CPU_TRAINING_THREADS,
                        help="torch threads for CPU training (default 1: same weights everywhere)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    metas = train_zoo(args.config, args.models_dir, args.names, args.device, args.force, args.threads)
    for name, meta in metas.items():
        accuracy = meta["metrics"].get("test_accuracy")
        print(f"{name:24s} test accuracy {accuracy if accuracy is None else f'{accuracy:.4f}':>8}"
              f"  trained in {meta['train_seconds']:6.1f} s on {meta['device']}")
    print(f"zoo ready in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
