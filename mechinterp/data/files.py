"""Standard datasets from files the user puts in a data directory (nothing is downloaded).

    from mechinterp.data.files import load_mnist, load_cifar10, load_torchvision, data_root
    images, labels, class_names = load_mnist("train", root="data")

The data directory is `root`, else $MECHINTERP_DATA, else ./data. Layouts:
  MNIST     <root>/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
                          t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}   (each may end in .gz;
            torchvision's <root>/MNIST/raw/ works too)
  CIFAR-10  <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}  (the python
            version, unpacked from cifar-10-python.tar.gz)
  torchvision datasets (when torchvision imports): "torchvision:FashionMNIST" etc. under <root>,
            constructed with download=False.

A missing file raises MissingDataError naming the files and the folder to put them in. CIFAR-10's
batches are pickles, so they are read with an unpickler that only accepts numpy arrays and
plain containers: a file that asks for any other code is refused, never executed.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np

DATA_ENV_VAR = "MECHINTERP_DATA"
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class MissingDataError(FileNotFoundError):
    """A dataset whose files are not in the data directory; the message says what to put where."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $MECHINTERP_DATA, else ./data."""
    return Path(root or os.environ.get(DATA_ENV_VAR) or "data")


def _missing(dataset: str, folder: Path, files: list[str], how: str) -> MissingDataError:
    listing = ", ".join(files)
    return MissingDataError(f"{dataset} is not in the data directory: put {listing} in {folder}/ "
                            f"({how}). Nothing is downloaded at run time; set ${DATA_ENV_VAR} or "
                            f"pass root= to use another data directory.")


# --- MNIST (IDX files) ---

def _find_idx(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (the MNIST format: magic, dimension sizes, then uint8 data), gzip or raw."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an uint8 IDX file (bad magic number {raw[:4].hex()})")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated or corrupt: header says {shape}, "
                         f"found {data.size} bytes of data")
    return data.reshape(shape)


def load_mnist(split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """MNIST images float32 (N, 1, 28, 28) in [0, 1], labels int64, class names '0'..'9'."""
    base = data_root(root)
    folders = [base / "mnist", base / "MNIST" / "raw", base]
    image_name, label_name = MNIST_FILES[split]
    paths = [_find_idx(folders, image_name), _find_idx(folders, label_name)]
    if None in paths:
        raise _missing("MNIST", base / "mnist", [image_name, label_name],
                       "the IDX files from the MNIST distribution, raw or .gz")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    return (images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64),
            [str(digit) for digit in range(10)])


# --- CIFAR-10 (python pickled batches, read safely) ---

class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; any other global is refused."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR-10 batch holds "
                                         "only arrays and lists")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict:
    """One CIFAR-10 python batch as a dict with str keys."""
    try:
        batch = _ArraysOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path} is not a readable CIFAR-10 python batch: {error}") from error
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def load_cifar10(split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10 images float32 (N, 3, 32, 32) in [0, 1], labels int64, the ten class names."""
    folder = data_root(root) / CIFAR_FOLDER
    needed = CIFAR_FILES[split] + ["batches.meta"]
    if not all((folder / name).is_file() for name in needed):
        raise _missing("CIFAR-10", folder, needed,
                       "unpack cifar-10-python.tar.gz, the python version")
    batches = [read_cifar_batch(folder / name) for name in CIFAR_FILES[split]]
    images = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
    meta = read_cifar_batch(folder / "batches.meta")
    names = [n.decode() if isinstance(n, bytes) else n for n in meta["label_names"]]
    return images.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels, names


# --- torchvision datasets, only where torchvision imports ---

def load_torchvision(dataset: str, split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A torchvision dataset class by name (e.g. 'FashionMNIST'), read from <root> without download."""
    try:
        import torchvision.datasets
    except ImportError as error:
        raise ImportError(f"dataset 'torchvision:{dataset}' needs torchvision, which does not "
                          "import here; install it or use the mnist / cifar10 loaders") from error
    base = data_root(root)
    try:
        data = getattr(torchvision.datasets, dataset)(str(base), train=split == "train", download=False)
    except RuntimeError as error:  # torchvision says "Dataset not found"
        raise _missing(dataset, base, [f"torchvision's {dataset} files"], str(error)) from error
    images = np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image, _ in data])
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.asarray([label for _, label in data], dtype=np.int64)
    return images, labels, list(getattr(data, "classes", [str(c) for c in sorted(set(labels))]))
