"""The fields a models/zoo.yaml entry may have and what each must hold, checked when the zoo is
read (without torch): a misspelt field, a wrong type, an unknown dataset or an
AttentionOnlyTransformer size it cannot be built with (n_heads: 0, n_layers: 0) is that entry's
problem, named with its zoo.yaml line, before anything is built or hashed.

    field_problems(entry, at)    # at("kwargs") -> "models/zoo.yaml:9", the field's line
    # ["models/zoo.yaml:9: kwargs must be a mapping of argument: value, e.g. {width: 16,
    #   classes: 8}; it is [8, 10]",
    #  "models/zoo.yaml:11: 'chekpoint' is not a field of a zoo entry (did you mean checkpoint?); ..."]

FIELDS is every field the zoo reads: the entry of a trained model (zoo.py, training.py), of an
imported one (config.py, describe.py's layer descriptions), of a `trainer:` entry
(transformers/training.py) and what config.py and inputs.py read to decide what to build.
"""
from __future__ import annotations

from typing import Callable

from mechinterp.names import did_you_mean
from mechinterp.transformers.interface import size_problems

DATASET_NAMES = ("shapes", "digits", "mnist", "mnist-5k", "cifar10", "wine", "breast-cancer",
                 "digits-flat", "sparse-features", "torchvision:<Dataset>", "folder:<name>", "csv:<name>")
IMAGE_SHAPES = {"shapes": (3, 32, 32), "digits": (1, 8, 8), "mnist": (1, 28, 28),  # [C, H, W]
                "mnist-5k": (1, 28, 28), "cifar10": (3, 32, 32)}
VECTOR_SHAPES = {"wine": (13,), "breast-cancer": (30,), "digits-flat": (64,)}   # [D]; and
SPARSE = "sparse-features"                           # [n_features] of its dataset_options
PROFILES = ("quick", "full", "gpu")
DEVICE_TYPES = ("cpu", "cuda", "mps")
OPTIMIZERS = ("adam", "sgd")
TRANSFORMER = "mechinterp.transformers.model:AttentionOnlyTransformer"   # its kwargs are checked here


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value) -> bool:
    return _whole(value) and value > 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag(value) -> bool:
    return isinstance(value, bool)


def _mapping(value) -> bool:
    return value is None or isinstance(value, dict)


def _names(value) -> bool:
    return isinstance(value, list) and all(_text(item) for item in value)


def _labels(value) -> bool:
    return isinstance(value, list) and all(_text(item) or _number(item) for item in value)


def _counts(*lengths: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, list) and len(value) in lengths and all(map(_count, value))


TEXT_PATH = "a path, e.g. ../my_weights/net.pt (relative to the folder of zoo.yaml)"
LAYER_NAMES = "a list of module names as model.named_modules() gives them, e.g. [features.0, features.2]"
FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "architecture": (_text, 'a built-in name (MLP, SmallCNN, WideCNN, DeepCNN) or "package.module:ClassName"'),
    "torchvision": (_text, "a torchvision model name, e.g. resnet18"),
    "kwargs": (_mapping, "a mapping of argument: value, e.g. {width: 16, classes: 8}"),
    "checkpoint": (_text, TEXT_PATH),
    "weights": (_text, TEXT_PATH),
    "trainer": (_text, '"package.module:function"'),
    "dataset": (_text, f"one of {', '.join(DATASET_NAMES)}"),
    "dataset_options": (_mapping, "a mapping of option: value, e.g. {count: 320, seed: 0}"),
    "data_root": (_text, "a folder, e.g. data"),
    "seed": (_whole, "a whole number, e.g. 0"),
    "epochs": (_count, "a whole number above 0, e.g. 4"),
    "steps": (_count, "a whole number above 0, e.g. 1500"),
    "batch_size": (_count, "a whole number above 0, e.g. 64"),
    "snapshot_every": (_count, "a whole number above 0, e.g. 50"),
    "segment_lengths": (_counts(2), "a list [shortest, longest] of whole numbers, e.g. [6, 19]"),
    "learning_rate": (_number, "a number, e.g. 0.003 (YAML reads 3e-3 as text: write 3.0e-3)"),
    "weight_decay": (_number, "a number, e.g. 0.01 (YAML reads 1e-2 as text: write 1.0e-2)"),
    "optimizer": (_text, f"one of {', '.join(OPTIMIZERS)}"),
    "batchnorm": (_flag, "true or false"),
    "devices": (_names, f"a list of device types, e.g. [cuda] ({', '.join(DEVICE_TYPES)})"),
    "profiles": (_names, f"a list of profiles, e.g. [full] ({', '.join(PROFILES)})"),
    "input_shape": (_counts(1, 3), "a list [C, H, W] of the images the model takes, e.g. [3, 32, 32], "
                    "or [D] of the vectors (N, D) it takes, e.g. [13]"),
    "resize_dataset": (_flag, "true or false (true: the dataset's images are resized to input_shape)"),
    "feature_layers": (_names, LAYER_NAMES),
    "conv_layers": (_names, LAYER_NAMES),
    "classifier_layer": (_text, "one module name, e.g. classifier"),
    "class_names": (_labels, "a list of one name per output, e.g. [line, edge, arc]"),
}
RESIZE_NEEDS = {"dataset": "the images to resize", "input_shape": "the [C, H, W] to resize them to"}
CHOICES = {"dataset": DATASET_NAMES[:-2], "optimizer": OPTIMIZERS, "devices": DEVICE_TYPES,
           "profiles": PROFILES}


def field_problems(entry: dict, at: Callable[[str], str]) -> list[str]:
    """What is wrong with the entry's fields, one line each naming at(field) (its zoo.yaml line):
    unknown fields first, then values of the wrong type or not among the choices, then the sizes
    in an AttentionOnlyTransformer's kwargs (transformers/interface.py), then what resize_dataset
    needs besides."""
    problems = [unknown_field(field, at(field)) for field in entry if field not in FIELDS]
    for field, value in entry.items():
        valid, description = FIELDS.get(field, (None, ""))
        if valid is not None and not valid(value):
            shown = "empty" if value is None else repr(value)
            problems.append(f"{at(field)}: {field} must be {description}; it is {shown}")
        elif field in CHOICES:
            problems += [f"{at(field)}: {problem}" for problem in _choice_problems(field, value)]
    if entry.get("architecture") == TRANSFORMER and isinstance(entry.get("kwargs"), dict):
        problems += [f"{at('kwargs')}: kwargs: {problem}" for problem in size_problems(entry["kwargs"])]
    if entry.get("resize_dataset") is True:
        problems += [f"{at('resize_dataset')}: resize_dataset needs {field} in the entry: {why}"
                     for field, why in RESIZE_NEEDS.items() if field not in entry]
        if isinstance(entry.get("input_shape"), list) and len(entry["input_shape"]) == 1:
            problems.append(f"{at('resize_dataset')}: resize_dataset resizes images to a [C, H, W] "
                            "input_shape, not vectors: leave it out and name a dataset of "
                            f"{entry['input_shape'][0]}-feature vectors")
    return problems


def unknown_field(field, where: str) -> str:
    return (f"{where}: {field!r} is not a field of a zoo entry{did_you_mean(field, FIELDS)}; the "
            "comments at the top of models/zoo.yaml list the fields")


def _choice_problems(field: str, value) -> list[str]:
    """A dataset, optimizer, device type or profile that is not one of the known ones."""
    if field == "dataset" and str(value).startswith(("torchvision:", "folder:", "csv:")):
        return []
    choices = CHOICES[field]
    listed = ", ".join(DATASET_NAMES if field == "dataset" else choices)
    return [f"{field} {item!r} is not one of {listed}{did_you_mean(item, choices)}"
            for item in (value if isinstance(value, list) else [value]) if item not in choices]


def datasets_of_shape(shape) -> list[str]:
    """The named datasets whose images are [C, H, W] `shape`, or whose vectors are [D]."""
    known = {**IMAGE_SHAPES, **VECTOR_SHAPES}
    names = [name for name, given in known.items() if list(given) == list(shape)]
    return names + ([f"{SPARSE} with dataset_options: {{n_features: {shape[0]}}}"] if len(shape) == 1 else [])
