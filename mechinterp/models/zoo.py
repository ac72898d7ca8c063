"""The zoo: every model the talk uses, named in models/zoo.yaml, trained or imported on demand.

    python -m mechinterp.models.zoo [--names shapes-cnn-a ...] [--device cpu] [--force]

    from mechinterp.models.zoo import train_zoo, load_model, load_meta
    train_zoo("models/zoo.yaml", "models")         # trains only the missing or stale models
    model = load_model("shapes-cnn-a", "models")   # eval mode, on pick_device()
    load_meta("shapes-cnn-a", "models")["metrics"]["test_accuracy"]

Each model lives in models/<name>/: checkpoint.safetensors and meta.json (config, inputs,
metrics.test_accuracy on the held-out split, train_seconds, device, torch_version,
checkpoint_sha256; an imported model has `imported: true` and no train_seconds). `inputs` is what the model is made of (mechinterp/models/inputs.py: the zoo
entry, the dataset, the checkpoint, the architecture's source files); a model is stale when its
files are missing or any input changed, and the figures that read it are stale with it. The figure
runner calls build_models() for the stale models its figures read, so `make figures` needs no
`make models` first.

A zoo entry either trains a model:
    shapes-cnn-a: {architecture: SmallCNN, kwargs: {width: 16}, dataset: shapes, seed: 0,
                   epochs: 4, batch_size: 64, learning_rate: 0.003}
or imports the speaker's own weights (paths relative to the folder of zoo.yaml):
    my-net: {architecture: "my_package.nets:MyNet", kwargs: {...}, checkpoint: ../my_net.pt,
             dataset: shapes, input_shape: [3, 32, 32]}
    my-resnet: {torchvision: resnet18, weights: ../resnet18.pth, kwargs: {num_classes: 10},
                input_shape: [3, 224, 224], feature_layers: [layer1, layer2, layer3, layer4]}
A `torchvision:` entry without `weights:` is trained like the first kind (shapes-resnet18). An
entry with `devices: [cuda]` (shapes-googlenet) is skipped by a build of every model on another
device and refused there when named: only a GPU trains it.
Optional layer descriptions (feature_layers, conv_layers, classifier_layer, input_shape,
class_names) fill in what the architecture does not define itself; a layer the model does not
have, or an input_shape a zero image of which its forward refuses, is the entry's problem when the
model is built (describe.py), as is a dataset whose images are not the model's input_shape
(or, none declared, that its forward refuses), before anything is trained or evaluated;
`resize_dataset: true` resizes the images to input_shape instead (mechinterp.data.fit_images).
Fields are checked when zoo.yaml is read (config.py, fields.py).
Weights are always read without running code from the file (see checkpoints.py).

A model that cannot be built (an architecture that does not import, a refused checkpoint, weights
that do not fit, a missing file) is reported in one block naming the entry, its zoo.yaml line and
what to do; the other models still build, and the run exits non-zero listing the failures.
VERBOSE=1 adds the traceback.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from mechinterp.atomic_file import write_atomic
from mechinterp.data import ImageShapeError
from mechinterp.device import keep_freed_memory, pick_device, seed_everything, torch_threads
from mechinterp.models.architectures import ARCHITECTURES
from mechinterp.models.checkpoints import load_state_dict, save_checkpoint, sha256_file
from mechinterp.models.describe import check_dataset_fits, describe_layers, try_one_image
from mechinterp.models.failures import failure_block, raised_at, weight_mismatches
from mechinterp.models.config import (FieldError, Zoo, ZooError, buildable, in_profile,  # noqa: F401
                                      is_imported, read_zoo, read_zoo_config, source_path,
                                      trains_on)
from mechinterp.models.inputs import (CHECKPOINT_NAME, META_NAME, build_records, entry_dataset,
                                      model_inputs, model_stale_reason)
from mechinterp.models.training import TrainingSettings, split_metrics, train_classifier

CPU_TRAINING_THREADS = 1
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "seed", "batchnorm",
                 "optimizer")


def _load_split(entry: dict, split: str, model: nn.Module):
    """The entry's dataset split (entry_dataset), checked to fit the model before anything is
    trained or evaluated on it (describe.check_dataset_fits)."""
    try:
        data = entry_dataset(entry, split)
    except ImageShapeError as error:
        shape = entry["input_shape"]
        raise FieldError("resize_dataset", f"resize_dataset: {error}; name a dataset of 1 or "
                         f"{shape[0]} channels, or change input_shape") from None
    check_dataset_fits(model, entry, data)
    return data


# --- building models ---

def resolve_architecture(spec: str) -> type:
    """A class from the built-in names (SmallCNN, ...) or an import path 'package.module:Class';
    a FieldError of the entry's `architecture:` line when there is none."""
    if spec in ARCHITECTURES:
        return ARCHITECTURES[spec]
    if ":" not in spec:
        raise FieldError("architecture", f"unknown architecture {spec!r}: use one of {', '.join(ARCHITECTURES)} or "
                         "an import path 'package.module:ClassName'")
    module_name, class_name = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FieldError("architecture", f"cannot import {module_name!r} for architecture {spec!r} ({error}); make "
                         "the package importable (a folder beside models/ with an __init__.py, "
                         "pip install -e it, or add its folder to PYTHONPATH) or fix the name "
                         "in zoo.yaml") from error
    except Exception as error:  # the user's module itself fails on import: say where
        raise FieldError("architecture", f"importing {module_name!r} (architecture {spec!r}) failed: "
                         f"{type(error).__name__}: {error}{raised_at(error)}; fix that module") from error
    if not hasattr(module, class_name):
        classes = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
                         and v.__module__ == module.__name__)
        raise FieldError("architecture", f"module {module_name!r} has no {class_name!r} (architecture {spec!r}); "
                         f"it defines {', '.join(classes) or 'no nn.Module class'}: fix the name "
                         "after ':' in zoo.yaml")
    return getattr(module, class_name)


def construct(cls: type, kwargs: dict) -> nn.Module:
    """cls(**kwargs), with a zoo error when the entry's kwargs do not fit the constructor."""
    import inspect
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as error:
        raise ZooError(f"kwargs {kwargs} do not fit {cls.__name__}{inspect.signature(cls)} "
                       f"({error}): fix kwargs in zoo.yaml") from error
    return cls(**kwargs)


def _torchvision_model(name: str, kwargs: dict) -> nn.Module:
    import torchvision.models   # here, not on import: it pulls in torch._dynamo (1 s a process)
    try:
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except ValueError as error:  # torchvision: "Unknown model name"
        known = ", ".join(sorted(torchvision.models.list_models())[:8])
        raise ZooError(f"torchvision has no model {name!r} ({error}); e.g. {known}, ...") from error


def build_model(entry: dict) -> nn.Module:
    """A freshly initialised model of the entry's architecture (seed first for determinism)."""
    kwargs = dict(entry.get("kwargs") or {})
    if "torchvision" in entry:
        model = _torchvision_model(entry["torchvision"], kwargs)
    else:
        model = construct(resolve_architecture(entry["architecture"]), kwargs)
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
        raise ZooError(f"{path} is corrupt ({error}); `make models` (or the next `make figures`) rebuilds "
                       f"model {name!r}") from error


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
        shown = weight_mismatches(model, state) or str(error).splitlines()[0].rstrip(".:")
        raise ZooError(f"the weights in {path} do not fit {type(model).__name__}: {shown}. "
                       "Check the architecture and its kwargs in zoo.yaml against the code that "
                       "saved the weights") from error


# --- building: train or import one model, then write its files ---

def train_one(name: str, entry: dict, device: torch.device) -> tuple[nn.Module, dict]:
    """Train a fresh model from its entry; return it and the measured part of its meta."""
    settings = TrainingSettings(**{k: entry[k] for k in TRAINING_KEYS if k in entry})
    seed_everything(settings.seed)
    model = build_model(entry)
    try_one_image(model, entry)
    train_data, test_data = _load_split(entry, "train", model), _load_split(entry, "test", model)
    report = train_classifier(model, train_data, settings, device, description=name)
    metrics = {**split_metrics(model, test_data, device, train_data), "final_train_loss": report.final_loss}
    return model, {"metrics": metrics, "class_names": train_data.class_names,
                   "train_seconds": report.train_seconds,
                   "images_per_second": report.images_per_second}


def import_one(name: str, entry: dict, device: torch.device, config_dir: Path) -> tuple[nn.Module, dict]:
    """Load the speaker's own weights into their architecture; measure it if a dataset is named."""
    source = source_path(entry, config_dir)
    if not source.is_file():
        raise ZooError(f"the weights file {entry.get('checkpoint') or entry.get('weights')} "
                       f"({source}) does not exist: save the weights there, or fix the path "
                       f"(relative paths start from {config_dir})")
    model = build_model(entry)
    _load_weights(model, load_state_dict(source), source)
    try_one_image(model, entry)
    test = _load_split(entry, "test", model) if "dataset" in entry else None
    model.to(device).eval()
    facts = {"source": str(source), "source_sha256": sha256_file(source), "imported": True,
             "class_names": entry.get("class_names"), "metrics": {}}
    if test is not None:
        facts["metrics"] = split_metrics(model, test, device)
        facts["class_names"] = facts["class_names"] or test.class_names
    return model, facts


def write_model(name: str, zoo: Zoo, model: nn.Module, facts: dict, models_dir,
                device: torch.device, outputs: dict | None = None) -> dict:
    """Write checkpoint, any other outputs ({file name: write(path)}), then meta.json (with the
    model's inputs), each atomically; return the meta."""
    folder = model_dir(name, models_dir)
    checkpoint = save_checkpoint(model.state_dict(), folder / CHECKPOINT_NAME)
    for file_name, write in (outputs or {}).items():
        facts = {**facts, "outputs": {**facts.get("outputs", {}),
                                      file_name: sha256_file(write(folder / file_name))}}
    meta = {"name": name, "config": zoo.entries[name], "inputs": model_inputs(name, zoo, models_dir),
            **build_records(zoo.entries[name]),     # to name what changed in the data, weigh code edits
            **facts, "device": str(device),
            "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
            "checkpoint": CHECKPOINT_NAME, "checkpoint_sha256": sha256_file(checkpoint),
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    write_atomic(folder / META_NAME, (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return meta


def build_one(name: str, zoo: Zoo, models_dir, device: torch.device) -> dict:
    """Train or import one model and write its files; return its meta."""
    if name in zoo.problems:
        raise ZooError(zoo.problems[name])
    keep_freed_memory()
    entry = zoo.entries[name]
    if not is_imported(entry) and not trains_on(entry, device):
        raise ZooError(f"model {name!r} trains only on {', '.join(entry['devices'])} (its devices: "
                       f"field), not on {device.type}: build it on a GPU machine with `make figures "
                       f"PROFILE=gpu DEVICE=cuda`, or copy its models/{name}/ folder here")
    outputs = {}
    if "trainer" in entry:      # a model with its own training (a sequence model and its snapshots)
        model, facts, outputs = resolve_trainer(entry["trainer"])(name, entry, device)
    else:
        model, facts = (import_one(name, entry, device, zoo.folder) if is_imported(entry)
                        else train_one(name, entry, device))
    return write_model(name, zoo, model, facts, models_dir, device, outputs)


def resolve_trainer(spec: str):
    """The function a `trainer: "package.module:function"` entry names."""
    module_name, _, function_name = str(spec).partition(":")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ZooError(f"trainer {spec!r} cannot be found ({error}): name it as "
                       "'package.module:function' in zoo.yaml") from error


def build_models(config_path, models_dir, names=None, device=None, force: bool = False,
                 profile: str | None = None, jobs: int = 1) -> tuple[dict[str, dict], dict[str, str]]:
    """Build the missing or stale models among `names` (default all, or those of `profile`: an
    entry with `profiles: [full]` is not built for "quick"); return ({name: meta},
    {name: failure block}). A model that fails is reported and the others still build. On the
    CPU, `jobs` > 1 builds that many at once in their own processes (models/parallel.py)."""
    zoo = read_zoo(config_path)
    known = set(zoo.entries) | set(zoo.problems)
    unknown = sorted(set(names or []) - known)
    if unknown:
        raise ZooError(f"{config_path} has no model {', '.join(map(repr, unknown))}; "
                       f"it names {', '.join(zoo.entries)}")
    device = as_device(device)
    names = names or default_names(zoo, device, profile)
    metas, failures = _build_side_by_side(names, zoo, config_path, models_dir, device, force, jobs)
    for name in [n for n in names if n not in metas and n not in failures]:
        try:
            metas[name] = _build_if_stale(name, zoo, models_dir, device, force)
        except Exception as error:  # noqa: BLE001 - one model's problem must not stop the others
            failures[name] = failure_block(name, zoo, error)
            print(failures[name], file=sys.stderr, flush=True)
    return {n: metas[n] for n in names if n in metas}, failures


def _build_side_by_side(names, zoo: Zoo, config_path, models_dir, device, force, jobs):
    """The stale models among names built `jobs` at a time on the CPU, with the caller's torch
    thread count; ({}, {}) when there are fewer than two to build, leaving them to build here."""
    if jobs < 2 or device.type != "cpu":
        return {}, {}
    stale = [n for n in names if n in zoo.entries and (force or model_stale_reason(n, zoo, models_dir))]
    if len(stale) < 2:
        return {}, {}
    from mechinterp.models.parallel import build_in_processes, longest_first
    return build_in_processes(longest_first(stale, zoo, models_dir), config_path, models_dir,
                              str(device), force, jobs, torch.get_num_threads())


def default_names(zoo: Zoo, device: torch.device, profile: str | None = None) -> list[str]:
    """What a build with no names builds: every entry of the profile (all when None) that this
    device trains or imports (and every broken one, to report it); entries trained only on other
    devices are skipped, saying so (config.buildable)."""
    entries = [n for n, e in zoo.entries.items() if profile is None or in_profile(e, profile)]
    return buildable(zoo, entries, device) + sorted(set(zoo.problems) - set(zoo.entries))


def _build_if_stale(name: str, zoo: Zoo, models_dir, device: torch.device, force: bool) -> dict:
    if name in zoo.problems:        # said as the entry's problem, not as a build that starts
        raise ZooError(zoo.problems[name])
    reason = "forced" if force else model_stale_reason(name, zoo, models_dir)
    if reason is None:
        return load_meta(name, models_dir)
    print(f"zoo: building {name} ({reason}) on {device}", file=sys.stderr, flush=True)
    kwargs = zoo.entries[name].get("kwargs")
    if kwargs and "architecture " in reason:   # an edited default of the class changes nothing they set
        given = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        built = zoo.entries[name].get("architecture") or zoo.entries[name].get("torchvision") or "its class"
        print(f"zoo: {name}'s entry passes {given} to {built}, over the defaults "
              "in its code", file=sys.stderr, flush=True)
    meta = build_one(name, zoo, models_dir, device)
    _print_summary(name, meta)
    return meta


def train_zoo(config_path: str | os.PathLike = "models/zoo.yaml",
              models_dir: str | os.PathLike = "models", names=None, device=None,
              force: bool = False, threads: int = CPU_TRAINING_THREADS,
              profile: str | None = None, jobs: int = 1) -> dict[str, dict]:
    """Train (or import) the zoo's missing or stale models; return {name: meta} for `names`
    (default: all, or those of `profile`, see build_models).
    Models that cannot be built raise one ZooError listing them, after the others are built."""
    with torch_threads(threads):
        metas, failures = build_models(config_path, models_dir, names, device, force, profile, jobs)
    if failures:
        raise ZooError("\n".join(failures.values()))
    return metas


def train_zoo_models(config_path, models_dir, names, device=None, jobs: int = 1) -> dict[str, str]:
    """The figure runner's call: build the stale models among `names`, `jobs` at a time on the
    CPU; {name: failure block}."""
    with torch_threads(CPU_TRAINING_THREADS):
        return build_models(config_path, models_dir, names, device, jobs=jobs)[1]


def accuracy_text(meta: dict) -> str:
    """The held-out accuracy to 4 places, or n/a (a sequence model has none)."""
    accuracy = meta["metrics"].get("test_accuracy")
    return f"{accuracy:.4f}" if accuracy is not None else "n/a"


def measured_text(meta: dict) -> str:
    """"test accuracy 0.9731", or for a model that reconstructs its input "test loss 0.0123"."""
    loss = meta["metrics"].get("test_loss")
    return f"test loss {loss:8.4f}" if loss is not None else f"test accuracy {accuracy_text(meta):>8}"


def built_text(meta: dict) -> str:
    """How the model came to be: "trained in 12.3 s", or "imported from ../w.pt" (no training)."""
    if meta.get("imported") or "train_seconds" not in meta:
        config = meta.get("config") or {}
        return f"imported from {config.get('checkpoint') or config.get('weights')}"
    return f"trained in {meta['train_seconds']:6.1f} s"


def _print_summary(name: str, meta: dict) -> None:
    print(f"zoo: {name}: {measured_text(meta)}, {built_text(meta)}", file=sys.stderr, flush=True)
    if meta.get("imported") and meta["metrics"].get("test_images"):
        print(f"zoo: {name}: measured on the zoo's test split of {(meta.get('config') or {}).get('dataset')!r} "
              f"({meta['metrics']['test_images']} items, mechinterp.data's split): held out only if the "
              "weights were not trained on those", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train the missing or stale models of the zoo.")
    parser.add_argument("--config", default="models/zoo.yaml")
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--names", nargs="+", help="only these models (default: all)")
    parser.add_argument("--device", help="cpu, cuda, mps or auto (default: $MECHINTERP_DEVICE or auto)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--threads", type=int, default=CPU_TRAINING_THREADS,
                        help="torch threads for CPU training (default 1: same weights everywhere)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="models built at once on the CPU, each in its own process "
                             "(default: the number of cores)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give how many models to build at once, 1 or more (make: JOBS=2)")
    start = time.perf_counter()
    try:
        with torch_threads(args.threads):
            metas, failures = build_models(args.config, args.models_dir, args.names, args.device,
                                           args.force, jobs=args.jobs)
    except ZooError as error:
        print(f"zoo: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nzoo: interrupted; the models built before it are kept, the others are as they were",
              file=sys.stderr)
        return 130
    for name, meta in metas.items():
        print(f"{name:24s} {measured_text(meta)}  {built_text(meta)} on {meta['device']}")
    if failures:
        print(f"zoo: {len(failures)} model(s) could not be built: {', '.join(failures)} "
              "(see the messages above)", file=sys.stderr)
        return 1
    print(f"zoo ready in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
