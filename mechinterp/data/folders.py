"""The speaker's own labelled images: a folder of class folders, laid out as torchvision's
ImageFolder reads it (torchvision finds the classes and files; PIL reads each image).

    dataset: folder:leaves                  # a zoo entry: images under <data folder>/leaves/
    images, labels, class_names = load_image_folder("leaves", "train", root="data")

Layouts, under the data folder (data_root, else $MECHINTERP_DATA, else ./data):
  leaves/train/<class>/<image> and leaves/test/<class>/<image>    the speaker's own split
  leaves/<class>/<image>      no split folders: a fixed, seeded, stratified TEST_FRACTION of each
                              class is held out as the test split
Class names are the class folders' names, sorted (ImageFolder's order); train/ and test/ must
hold the same classes. A split's images come with the classes taking turns (classes_in_turn), so
a `count` of the first N holds every class alike. Any file PIL reads (png, jpg, bmp, tif, ...). When every image is grey
the images have one channel, else every image is read as RGB (a grey one repeated). The images
of a split must share one size, unless `size` (H, W) is given (the zoo passes input_shape with
resize_dataset: true): then each is resized to it, antialiased, as it is read. Pixels are
float32 in [0, 1], (N, C, H, W). A file that is not an image, an empty class folder or a size
that differs is an error naming the file and what to do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mechinterp.data.files import DATA_ENV_VAR, MissingDataError, data_root

TEST_FRACTION = 0.2
SPLIT_SEED = 0
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def relative_to_here(folder: Path) -> str:
    """' (that is /abs/path/: ...)' for a relative folder: data_root is read from where make runs."""
    if folder.is_absolute():
        return ""
    return (f" (that is {folder.resolve()}/: a relative data_root or ${DATA_ENV_VAR} is read from the folder "
            "the command runs in, the repository's for make)")


def image_folder(name: str, root=None) -> Path:
    """<data folder>/<name>, or a MissingDataError saying where to put the images."""
    folder = data_root(root) / name
    if not folder.is_dir():
        from mechinterp.names import did_you_mean
        present = sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) if folder.parent.is_dir() else []
        raise MissingDataError(
            f"dataset 'folder:{name}': no folder {folder}/{relative_to_here(folder)}{did_you_mean(name, present)}. "
            f"Put your images there as "
            f"{folder}/<class>/<image> (or {folder}/train/<class>/... and {folder}/test/<class>/...); "
            f"set data_root in the zoo entry or ${DATA_ENV_VAR} for another data folder")
    return folder


def class_samples(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """[(image path, class index)] and the class names of one folder of class folders."""
    from torchvision.datasets import ImageFolder
    try:
        found = ImageFolder(str(folder), allow_empty=False)
    except FileNotFoundError as error:     # no class folder, or a class folder with no image
        raise MissingDataError(f"{folder}: {error}. Each class is a folder of images "
                               f"({folder}/<class>/<image>)") from None
    return found.samples, found.classes


def split_samples(folder: Path, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The split's samples: from train/ and test/ when the folder has them, else a seeded,
    stratified hold-out of TEST_FRACTION of each class."""
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        (train, classes), (test, test_classes) = class_samples(folder / "train"), class_samples(folder / "test")
        if classes != test_classes:
            raise ValueError(f"{folder}: train/ has the classes {classes} but test/ has {test_classes}: "
                             "give both the same class folders")
        return classes_in_turn(train if split == "train" else test), classes
    from sklearn.model_selection import train_test_split
    samples, classes = class_samples(folder)
    train, test = train_test_split(samples, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=[label for _, label in samples])
    return classes_in_turn(train if split == "train" else test), classes


def classes_in_turn(samples: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The samples with the classes taking turns (the first file of each class, then the second
    of each, ...; files in sorted order within a class): the first N, as a `count` takes them,
    hold every class alike, not only the first classes' folders."""
    turns, keyed = {}, []
    for path, label in sorted(samples):
        turns[label] = turns.get(label, 0) + 1
        keyed.append((turns[label], label, path))
    return [(path, label) for _, label, path in sorted(keyed)]


def read_pixels(paths: list[str], size: tuple[int, int] | None) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1]: one channel when every image is grey, else RGB."""
    from PIL import Image, UnidentifiedImageError
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                images.append(image.copy())
        except (OSError, UnidentifiedImageError) as error:
            raise ValueError(f"{path}: not an image PIL can read ({error}): remove or replace it") from None
    mode = "L" if all(image.mode in GREY_MODES for image in images) else "RGB"
    first = images[0].size
    arrays = []
    for path, image in zip(paths, images):
        if size is not None:
            image = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        elif image.size != first:
            raise ValueError(f"{path} is {image.size[0]}x{image.size[1]} pixels but {paths[0]} is "
                             f"{first[0]}x{first[1]}: give the images one size, or resize them as they are "
                             "read: input_shape: [C, H, W] and resize_dataset: true in the zoo entry")
        arrays.append(np.asarray(image.convert(mode), dtype=np.float32) / 255.0)
    stacked = np.stack(arrays)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


def load_image_folder(name: str, split: str, root=None, size: tuple[int, int] | None = None):
    """(images (N, C, H, W), labels (N,), class names) of the split of folder dataset `name`."""
    samples, classes = split_samples(image_folder(name, root), split)
    paths = [path for path, _ in samples]
    return read_pixels(paths, size), np.asarray([label for _, label in samples], dtype=np.int64), classes
