"""Offline datasets: determinism, shapes and ranges, geometry of the drawings against
independent references, user data files (real IDX / CIFAR files written here) and messages."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.path import Path as PolygonPath

from mechinterp.data import LabelledImages, load_dataset, natural_patches
from mechinterp.data.files import MissingDataError
from mechinterp.data.patches import photo_bank
from mechinterp.data.shapes import (CLASS_NAMES, convex_signed_distance, make_shapes,
                                    segment_distance)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --- procedural shapes ---

def test_shapes_same_seed_same_bytes_other_seed_other_bytes():
    images, labels = make_shapes(96, seed=3)
    again, again_labels = make_shapes(96, seed=3)
    other, _ = make_shapes(96, seed=4)
    assert images.dtype == np.uint8 and images.shape == (96, 32, 32, 3)
    assert _digest(images) == _digest(again) and np.array_equal(labels, again_labels)
    assert _digest(images) != _digest(other)


def test_shapes_are_the_same_in_a_fresh_process():
    """No hidden state (caches, global RNGs): another interpreter draws the same bytes."""
    code = ("import hashlib; from mechinterp.data.shapes import make_shapes; "
            "print(hashlib.sha256(make_shapes(40, seed=11)[0].tobytes()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == _digest(make_shapes(40, seed=11)[0])


def test_load_dataset_shapes_is_balanced_float_in_unit_range():
    data = load_dataset("shapes", "train", count=160, seed=5)
    assert isinstance(data, LabelledImages)
    assert data.images.dtype == torch.float32 and data.images.shape == (160, 3, 32, 32)
    assert data.labels.dtype == torch.int64 and data.class_names == CLASS_NAMES
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    assert torch.bincount(data.labels, minlength=8).tolist() == [20] * 8
    again = load_dataset("shapes", "train", count=160, seed=5)
    assert torch.equal(data.images, again.images)


def test_shapes_default_splits_are_disjoint_draws():
    train = load_dataset("shapes", "train", count=64)
    test = load_dataset("shapes", "test", count=64)
    assert not torch.equal(train.images, test.images)


def test_segment_distance_matches_dense_sampling():
    rng = np.random.default_rng(0)
    y, x = (np.mgrid[0:16, 0:16].astype(np.float32) + 0.5)[:, None]
    ends = rng.uniform(0, 16, (3, 4))
    fields = segment_distance(x, y, *ends.T)
    for (ax, ay, bx, by), field in zip(ends, fields):
        t = np.linspace(0, 1, 4001)
        points = np.stack([ax + t * (bx - ax), ay + t * (by - ay)], axis=1)
        brute = np.min(np.hypot(x[0][..., None] - points[:, 0], y[0][..., None] - points[:, 1]), axis=2)
        np.testing.assert_allclose(field, brute, atol=0.01)


def test_polygon_signed_distance_is_negative_exactly_inside():
    y, x = (np.mgrid[0:32, 0:32].astype(np.float32) + 0.5)[:, None]
    vx = np.array([[5.0, 27.0, 12.0]])
    vy = np.array([[6.0, 10.0, 28.0]])
    inside = convex_signed_distance(x, y, vx, vy)[0] < 0
    points = np.stack([x[0].ravel(), y[0].ravel()], axis=1)
    reference = PolygonPath(np.stack([vx[0], vy[0]], axis=1)).contains_points(points).reshape(32, 32)
    assert (inside == reference).mean() > 0.995      # only pixels on the boundary may differ
    assert inside.sum() > 100


# --- digits and natural patches ---

def test_digits_splits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert train.class_names == [str(d) for d in range(10)]
    assert set(test.labels.tolist()) == set(range(10))
    assert torch.equal(load_dataset("digits", "test").images, test.images)


def test_natural_patches_deterministic_and_textured():
    patches = natural_patches(12, 50, seed=2)
    assert patches.shape == (50, 3, 12, 12) and patches.dtype == torch.float32
    assert torch.equal(patches, natural_patches(12, 50, seed=2))
    assert not torch.equal(patches, natural_patches(12, 50, seed=3))
    assert float(patches.std(dim=(1, 2, 3)).median()) > 0.01
    assert natural_patches(8, 5, seed=0, grey=True).shape == (5, 1, 8, 8)


# --- user data files ---

def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_mnist_idx_files_load(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images, compress=True)
    _write_idx(folder / "t10k-labels-idx1-ubyte", labels, compress=False)
    data = load_dataset("mnist", "test", root=tmp_path)
    assert data.images.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, atol=1e-7)
    assert data.labels.tolist() == [3, 1, 4, 1, 5]


def test_truncated_idx_file_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8), compress=False)
    raw = (folder / "t10k-images-idx3-ubyte").read_bytes()
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw[:-100])
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8), compress=False)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte is truncated"):
        load_dataset("mnist", "test", root=tmp_path)


def test_missing_user_files_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.delenv("MECHINTERP_DATA", raising=False)
    with pytest.raises(MissingDataError) as missing_mnist:
        load_dataset("mnist", "train", root=tmp_path)
    message = str(missing_mnist.value)
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert str(tmp_path / "mnist") in message
    with pytest.raises(MissingDataError) as missing_cifar:
        load_dataset("cifar10", "test", root=tmp_path)
    assert "test_batch" in str(missing_cifar.value) and "batches.meta" in str(missing_cifar.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(missing_cifar.value)


def test_data_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(MissingDataError, match="elsewhere"):
        load_dataset("mnist", "test")


def _write_cifar(folder, split_files, rng):
    folder.mkdir(parents=True)
    for name in split_files:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": [0, 9, 2, 3], b"batch_label": b"x"}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_cifar10_python_batches_load(tmp_path):
    rng = np.random.default_rng(1)
    _write_cifar(tmp_path / "cifar-10-batches-py", ["test_batch"], rng)
    data = load_dataset("cifar10", "test", root=tmp_path)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert data.images.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(data.images.reshape(4, -1).numpy(), raw[b"data"] / 255.0, atol=1e-7)
    assert data.labels.tolist() == [0, 9, 2, 3] and data.class_names[9] == "class9"


def test_cifar_batch_that_would_run_code_is_refused(tmp_path, writes_marker):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder, ["test_batch"], np.random.default_rng(0))
    marker = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": writes_marker(marker)}))
    with pytest.raises(ValueError, match="test_batch is not a readable CIFAR-10"):
        load_dataset("cifar10", "test", root=tmp_path)
    assert not marker.exists()


def test_torchvision_datasets_only_where_torchvision_imports(tmp_path):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs torchvision"):
            load_dataset("torchvision:FashionMNIST", "test", root=tmp_path)
    else:
        with pytest.raises(MissingDataError, match="FashionMNIST"):
            load_dataset("torchvision:FashionMNIST", "test", root=tmp_path)


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="split must be"):
        load_dataset("digits", "validation")


def test_natural_patches_are_crops_of_the_shipped_photographs():
    bank = photo_bank(512)
    patches = natural_patches(6, 4, seed=1)
    for patch in (patches.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8):
        # every place in every photograph whose first pixel is the patch's, then the whole crop
        photo, rows, cols = np.nonzero((bank[:, :-5, :-5] == patch[0, 0]).all(axis=-1))
        assert any(np.array_equal(bank[p, r:r + 6, c:c + 6], patch) for p, r, c in zip(photo, rows, cols))
    grey = natural_patches(6, 4, seed=1, grey=True)
    torch.testing.assert_close(grey, patches.mean(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="patch size 600 exceeds"):
        natural_patches(600, 1)
