"""Zoo models of vectors (`input_shape: [D]`): a speaker's MLP trained or imported on a tabular
dataset, a toy model of superposition trained on sparse features, their layers listed, and one
clear message where an image model is needed or the entry does not say what the model takes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from mechinterp.data import load_dataset
from mechinterp.models.config import read_zoo
from mechinterp.models.training import accuracy
from mechinterp.models.zoo import load_meta, load_model, main, train_zoo
from tests.test_zoo import REPO

VECTOR_NETS = textwrap.dedent('''\
    """A speaker's own models of vectors."""
    import torch
    from torch import nn


    class VecMLP(nn.Module):
        def __init__(self, n_in=13, hidden=16, classes=3):
            super().__init__()
            self.fc1 = nn.Linear(n_in, hidden)
            self.act1 = nn.ReLU()
            self.head = nn.Linear(hidden, classes)

        def forward(self, x):
            return self.head(self.act1(self.fc1(x)))


    class ToySuperposition(nn.Module):
        """x -> ReLU(W^T W x + b), 20 features in 5 dimensions (Elhage et al. 2022)."""
        def __init__(self, n_features=20, n_hidden=5):
            super().__init__()
            self.W = nn.Parameter(torch.randn(n_hidden, n_features) * 0.1)
            self.b = nn.Parameter(torch.zeros(n_features))
            self.hidden = nn.Identity()
            self.out = nn.ReLU()

        def forward(self, x):
            h = self.hidden(x.flatten(1) @ self.W.T)
            return self.out(h @ self.W + self.b)
''')
WINE_MLP = textwrap.dedent('''\
    my-wine:
      architecture: "vec_nets:VecMLP"
      kwargs: {n_in: 13, hidden: 16, classes: 3}
      dataset: wine
      input_shape: [13]
      epochs: 40
      batch_size: 32
      learning_rate: 0.01
''')
TOY = textwrap.dedent('''\
    my-toy:
      architecture: "vec_nets:ToySuperposition"
      kwargs: {n_features: 20, n_hidden: 5}
      dataset: sparse-features
      dataset_options: {n_features: 20, feature_probability: 0.05, count: 4096}
      input_shape: [20]
      epochs: 12
      batch_size: 256
      learning_rate: 0.01
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A speaker's folder: vec_nets.py and models/; the zoo's builds run with it importable."""
    (tmp_path / "vec_nets.py").write_text(VECTOR_NETS)
    (tmp_path / "models").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write_zoo(project, *entries: str):
    path = project / "models" / "zoo.yaml"
    path.write_text("models:\n" + "".join(textwrap.indent(entry, "  ") for entry in entries))
    return path


def layers(project, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mechinterp.models.layers", name], cwd=project,
                          env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{project}"},
                          capture_output=True, text=True)


def test_a_vector_mlp_trains_on_wine_and_its_layers_are_listed_with_shapes(project):
    config = write_zoo(project, WINE_MLP)
    meta = train_zoo(config, project / "models", device="cpu")["my-wine"]
    assert meta["metrics"]["test_accuracy"] > 0.85 and meta["metrics"]["test_images"] == 45
    model = load_model("my-wine", project / "models", device="cpu")
    assert model.input_shape == (13,) and model.class_names == ["class_0", "class_1", "class_2"]
    listing = layers(project, "my-wine")
    assert listing.returncode == 0, listing.stderr
    assert "output shapes for one 13-feature vector" in listing.stdout.splitlines()[0]
    rows = {line.split()[0]: line.split()[1:] for line in listing.stdout.splitlines()[1:]}
    assert rows["fc1"] == ["Linear", "16"] and rows["act1"] == ["ReLU", "16"] and rows["head"] == ["Linear", "3"]


def test_an_imported_vector_model_is_measured_and_said_to_be_imported_not_trained(project, capsys):
    from vec_nets import VecMLP
    torch.manual_seed(0)
    own = VecMLP()
    (project / "my_weights").mkdir()
    torch.save(own.state_dict(), project / "my_weights" / "wine.pt")
    entry = WINE_MLP.replace("  epochs: 40\n", "  checkpoint: ../my_weights/wine.pt\n")
    config = write_zoo(project, entry)
    assert main(["--config", str(config), "--models-dir", str(project / "models"), "--jobs", "1"]) == 0
    printed = capsys.readouterr()
    assert "my-wine" in printed.out and "imported from ../my_weights/wine.pt on cpu" in printed.out
    assert "zoo: my-wine: test accuracy" in printed.err and "imported from ../my_weights/wine.pt" in printed.err
    assert "measured on the zoo's test split of 'wine'" in printed.err and "held out only if" in printed.err
    assert "trained in" not in printed.out + printed.err
    meta = load_meta("my-wine", project / "models")
    assert meta["imported"] is True and "train_seconds" not in meta
    test = load_dataset("wine", "test")
    assert meta["metrics"]["test_accuracy"] == pytest.approx(accuracy(own.eval(), test, torch.device("cpu")))


def test_a_toy_model_of_superposition_is_trained_by_the_zoo_on_sparse_features(project):
    config = write_zoo(project, TOY)
    meta = train_zoo(config, project / "models", device="cpu")["my-toy"]
    test = load_dataset("sparse-features", "test", n_features=20, feature_probability=0.05, count=4096)
    silent = float((test.images ** 2).mean())          # the loss of a model that outputs zeros
    assert meta["metrics"]["test_loss"] < 0.6 * silent and "test_accuracy" not in meta["metrics"]
    assert meta["metrics"]["train_images"] == meta["metrics"]["test_images"] == 4096 and meta["class_names"] == []
    model = load_model("my-toy", project / "models", device="cpu")
    with torch.no_grad():
        error = float(((model(test.images) - test.images) ** 2).mean())
    assert error == pytest.approx(meta["metrics"]["test_loss"], rel=1e-4)
    listing = layers(project, "my-toy")
    assert listing.returncode == 0, listing.stderr
    assert [line.split()[:3] for line in listing.stdout.splitlines() if line.split()[0] in ("hidden", "out")] == [
        ["hidden", "Identity", "5"], ["out", "ReLU", "20"]]


def test_a_vector_dataset_of_another_length_is_the_entrys_problem(project):
    config = write_zoo(project, WINE_MLP.replace("dataset: wine", "dataset: breast-cancer"))
    with pytest.raises(Exception) as raised:
        train_zoo(config, project / "models", device="cpu")
    assert ("dataset 'breast-cancer' gives 30-feature vectors, but the model takes 13-feature vectors "
            "(input_shape): name a dataset of 13-feature vectors (wine, sparse-features with "
            "dataset_options: {n_features: 13}), or set input_shape to [30]") in str(raised.value)


@pytest.mark.parametrize("shape, words", [
    ("[13, 2]", "input_shape must be a list [C, H, W] of the images the model takes, e.g. [3, 32, 32], "
                "or [D] of the vectors (N, D) it takes"),
    ("[13]\n  resize_dataset: true", "resize_dataset resizes images to a [C, H, W] input_shape, not vectors")])
def test_a_vector_input_shape_is_checked_when_the_zoo_is_read(project, shape, words):
    config = write_zoo(project, WINE_MLP.replace("[13]", shape))
    assert words in read_zoo(config).problems["my-wine"]
    assert read_zoo(write_zoo(project, WINE_MLP)).problems == {}


def test_layers_of_a_model_stating_no_input_shape_say_what_was_tried(project):
    (project / "my_weights").mkdir()
    from vec_nets import ToySuperposition
    torch.save(ToySuperposition().state_dict(), project / "my_weights" / "toy.pt")
    write_zoo(project, 'my-toy:\n  architecture: "vec_nets:ToySuperposition"\n  checkpoint: ../my_weights/toy.pt\n')
    listing = layers(project, "my-toy")
    assert listing.returncode == 1 and listing.stdout == ""
    assert listing.stderr.strip().splitlines() == [
        "layers: my-toy (ToySuperposition) states no input_shape, so a zero 3x224x224 image was tried, and "
        "its forward fails on it (RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x150528 and "
        "20x5)): add input_shape: [D] (a model of (N, D) vectors) or [C, H, W] (images) to its entry in "
        "models/zoo.yaml"]


def test_what_needs_an_image_model_says_so_for_a_model_of_vectors(project):
    from mechinterp.featvis.dataset_examples import receptive_field
    from mechinterp.featvis.render import model_input_shape
    from mechinterp.universality.filters import first_layer_filters
    train_zoo(write_zoo(project, WINE_MLP.replace("epochs: 40", "epochs: 1")), project / "models", device="cpu")
    model = load_model("my-wine", project / "models", device="cpu")
    words = "zoo entry 'my-wine' takes 13-feature vectors (input_shape [13]), not images: "
    with pytest.raises(ValueError, match=re.escape(words + "feature visualisation of pixels needs an image model")):
        model_input_shape(model, None)
    with pytest.raises(ValueError, match=re.escape(words + "a receptive field needs an image model")):
        receptive_field(model, "act1", model.input_shape)
    with pytest.raises(ValueError, match=re.escape(words + "first-layer filters shown as images needs an image model")):
        first_layer_filters(model)
