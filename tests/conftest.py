"""Shared pytest fixtures.

trained_zoo: the repository's default zoo (models/zoo.yaml), trained into models/ once per test
session if missing or stale (a no-op when `make models` already ran), so tests and the deck build
share the same checkpoints. Under pytest-xdist (`make test` runs one worker per core) the first
worker to get models/.test-zoo.lock trains; the others wait on it and find the models fresh. Tests that need a zoo model take this fixture and load from the
returned folder:

    def test_something(trained_zoo):
        model = load_model("shapes-cnn-a", trained_zoo, device="cpu")

run_figure: the figure harness. It finds the script that declares a figure id, calls its make
function the way the runner does (deck style, a FigureContext on the CPU, the profile's params),
checks that the PNG was written and that the numbers are JSON the runner can write, and returns
those numbers as JSON values:

    def test_a_figure(run_figure, trained_zoo, tmp_path):
        numbers = run_figure("universality/probes", trained_zoo, tmp_path)          # quick params
        numbers = run_figure("superposition/phase-diagram", tmp_path, tmp_path, params={...})

train_digits_mlp: a factory for a one-hidden-layer digits MLP (flatten, fc1, relu1, fc2) trained
full-batch with Adam on the first 1,400 scikit-learn digits (about a second); it returns
(model, train_images, train_labels, test_images, test_labels).

renamed_cnn_zoo: a models folder whose "shapes-cnn-a" is RenamedCNN, a network with none of the
zoo's layer names, for checking that a figure reads layers and shapes from the model.

grey_cnn_zoo: a models folder whose "grey-cnn" is tests/grey_cnn.py's GreyNestedCNN, a one-channel 28x28 network of
nested nn.Sequential blocks (features.0 ...) with GELU, trained two epochs on mnist-5k (seconds),
whose feature_layers are two of its three convs' activations: the figures' own-model check.

vector_zoo: a models folder with tests/vector_models.py's MLP with no conv layer ("tab-mlp", trained on
digits in seconds) and toy model of superposition ("toy", imported from a checkpoint of known W).

zoo_from: zoo_from(folder, text) trains the zoo a zoo.yaml text describes into folder/models.

writes_marker: a class whose unpickling opens its marker file for writing, so a test can tell
whether a loader ran the code inside a pickle (the file appears) or refused it.
"""
from __future__ import annotations

import fcntl
import functools
import importlib
import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
ZOO_CONFIG = MODELS_DIR / "zoo.yaml"
FIGURE_SCRIPTS = REPO_ROOT / "figures_src"


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """Tests use tiny tensors, where a second thread costs more than it gives (and CI shares cores);
    freed memory is kept, as the figure workers and the zoo keep it."""
    from mechinterp.device import keep_freed_memory
    torch.set_num_threads(1)
    keep_freed_memory()


@pytest.fixture(scope="session")
def trained_zoo() -> Path:
    """The repo's models/ folder with every default zoo model of the quick profile trained and up
    to date (entries marked `profiles: [full]`, the extra transformer seeds, are left out)."""
    from mechinterp.models.zoo import train_zoo
    MODELS_DIR.mkdir(exist_ok=True)
    with open(MODELS_DIR / ".test-zoo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # released when the file closes
        # side by side, as `make models` does: the other workers wait on this lock meanwhile
        train_zoo(ZOO_CONFIG, MODELS_DIR, device="cpu", profile="quick", jobs=os.cpu_count() or 1)
    return MODELS_DIR


# --- the figure harness --------------------------------------------------------------------------

@functools.cache
def declared_figures() -> dict:
    """{figure id: FigureSpec} as the runner discovers them (so a FIGURES it cannot read fails here)."""
    from figures_src.runner import discover_figures
    return discover_figures(FIGURE_SCRIPTS, REPO_ROOT)


def figure_module(figure_id: str):
    """The figures_src module whose FIGURES declares `figure_id`."""
    if figure_id not in declared_figures():
        raise KeyError(f"no script in {FIGURE_SCRIPTS} declares figure {figure_id!r}")
    return importlib.import_module(f"figures_src.{Path(declared_figures()[figure_id].script).stem}")


def make_figure(figure_id: str, models_dir, staging: Path, params: dict | None = None,
                profile: str = "quick", models: list[str] | None = None) -> dict:
    """Run one figure as the runner would and return its numbers as JSON values; `models` in place
    of its FIGURES entry's "models" points it at other models, as a speaker does."""
    from figures_src.runner import to_jsonable
    from figures_src.runner.context import FigureContext
    from figures_src.runner.style import apply_style
    from mechinterp.device import seed_everything
    module = figure_module(figure_id)
    spec = module.FIGURES[figure_id]
    if params is None:
        declared = spec.get("params", {})
        params = declared.get(profile, {}) if {"quick", "full"} & set(declared) else declared
    apply_style()
    seed_everything(0)
    context = FigureContext(figure_id, params, profile, torch.device("cpu"), staging, Path(models_dir),
                            declared_models=tuple(models or spec.get("models", [])), script=module.__file__)
    numbers = json.loads(json.dumps(to_jsonable(getattr(module, spec["make"])(context)), allow_nan=False))
    assert (staging / f"{context.name}.png").stat().st_size > 10_000
    assert context.warnings == [], context.warnings          # no titles overprinting each other
    return numbers


@pytest.fixture
def run_figure():
    return make_figure


# --- a digits MLP trained here -------------------------------------------------------------------

def digits_tensors():
    """scikit-learn's 1,797 digits as (N, 1, 8, 8) images in [0, 1] and their labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None], torch.tensor(digits.target)


def digits_mlp(hidden: int = 32, steps: int = 300, lr: float = 0.01, seed: int = 0, train: int = 1400):
    """(model, train images, train labels, test images, test labels): the MLP trained full-batch."""
    images, labels = digits_tensors()
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc1", nn.Linear(64, hidden))
    model.add_module("relu1", nn.ReLU())
    model.add_module("fc2", nn.Linear(hidden, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(images[:train]), labels[:train]).backward()
        optimiser.step()
    return model.eval(), images[:train], labels[:train], images[train:], labels[train:]


@pytest.fixture(scope="session")
def train_digits_mlp():
    return digits_mlp


# --- a shapes CNN that is not ours --------------------------------------------------------------
# Figures must read layer names, widths and shapes from the model's description: this network
# has none of the zoo's names. renamed_cnn_zoo trains it (2 epochs, seconds) as "shapes-cnn-a".

class RenamedCNN(nn.Sequential):
    """A small shapes CNN whose layer names are not the zoo's (c1/a1/..., head)."""

    def __init__(self, classes: int = 8):
        super().__init__()
        for index, (inputs, outputs) in enumerate([(3, 12), (12, 24), (24, 24)], start=1):
            self.add_module(f"c{index}", nn.Conv2d(inputs, outputs, 3, padding=1))
            self.add_module(f"a{index}", nn.ReLU())
            self.add_module(f"p{index}", nn.MaxPool2d(2))
        self.add_module("squash", nn.AdaptiveMaxPool2d(1))
        self.add_module("flat", nn.Flatten())
        self.add_module("head", nn.Linear(24, classes))
        self.input_shape = (3, 32, 32)
        self.conv_layers, self.feature_layers, self.classifier_layer = ["c1", "c2", "c3"], ["a1", "a2", "a3"], "head"


RENAMED_CNN_ZOO = """models:
  shapes-cnn-a:
    architecture: "tests.conftest:RenamedCNN"
    dataset: shapes
    seed: 0
    epochs: 2
    batch_size: 64
    learning_rate: 0.003
"""


GREY_CNN_ZOO = """models:
  grey-cnn:
    architecture: "tests.grey_cnn:GreyNestedCNN"
    dataset: mnist-5k
    input_shape: [1, 28, 28]
    feature_layers: [features.4, features.7]
    seed: 0
    epochs: 2
    batch_size: 64
    learning_rate: 0.01
"""


def zoo_from_yaml(folder: Path, text: str) -> Path:
    """Train the zoo that `text` (a zoo.yaml) describes into folder/models and return that folder."""
    from mechinterp.models.zoo import train_zoo
    (folder / "zoo.yaml").write_text(text)
    train_zoo(folder / "zoo.yaml", folder / "models", device="cpu")
    return folder / "models"


@pytest.fixture(scope="session")
def zoo_from():
    """zoo_from(folder, zoo_yaml_text) -> the models folder it trained."""
    return zoo_from_yaml


@pytest.fixture(scope="module")
def renamed_cnn_zoo(tmp_path_factory):
    return zoo_from_yaml(tmp_path_factory.mktemp("renamed-cnn"), RENAMED_CNN_ZOO)


@pytest.fixture(scope="session")
def grey_cnn_zoo(tmp_path_factory):
    return zoo_from_yaml(tmp_path_factory.mktemp("grey-cnn"), GREY_CNN_ZOO)


@pytest.fixture(scope="session")
def vector_zoo(tmp_path_factory):
    """tests/vector_models.py's zoo: "tab-mlp" (no conv layer) and the toy model "toy"."""
    from tests.vector_models import VECTOR_ZOO, toy_checkpoint
    folder = tmp_path_factory.mktemp("vector")
    toy_checkpoint(folder / "toy.pt")
    return zoo_from_yaml(folder, VECTOR_ZOO.format(toy=folder / "toy.pt"))


# --- pickles that would run code -----------------------------------------------------------------

class WritesMarker:
    """Unpickling this calls open(marker, 'w'): the file appears iff the pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def writes_marker():
    return WritesMarker
