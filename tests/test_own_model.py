"""Bring your own model, end to end, as a new user does it, in a temporary copy of the repository.

The user writes a package of their own (my_nets/tiny.py, a small CNN built from a helper in
my_nets/blocks.py), trains it briefly on the shapes data with a script of their own and saves it
with torch.save(model.state_dict(), ...) outside models/, names it in models/zoo.yaml, writes a
figure script (figures_src/mytalk.py: two figures that read the model, one that does not) and a
deck (talk/mytalk.md, nothing in its headmatter but a title and its own bibliography mine.bib)
that quotes the new numbers with <Measured>, cites with [@key] and ends on a bibliography
slide. Then they re-save the weights,
and later edit the helper module: each time exactly the two figures that read the model are
remade, without `make models`, and the deck quotes the new numbers.

The copy holds the tracked files (`git ls-files`); .venv and talk/node_modules are symlinks to
this checkout's, with the copy's pyproject.toml and package-lock.json dated back so make never
reinstalls into them.
"""
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.talkdir import link_node_modules

REPO = Path(__file__).resolve().parent.parent
MODEL_FIGURES = {"mytalk/accuracy", "mytalk/activation"}
ALL_FIGURES = MODEL_FIGURES | {"mytalk/constant"}

BLOCKS = '''\
"""Building blocks of my networks."""
from torch import nn


def conv_block(channels_in, channels_out):
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
'''
TINY = '''\
"""My small CNN for the shapes data."""
from torch import nn

from my_nets.blocks import conv_block


class Tiny(nn.Module):
    def __init__(self, width=8, classes=8):
        super().__init__()
        self.features = nn.Sequential(conv_block(3, width), conv_block(width, width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))
'''
TRAIN = '''\
"""My training script: a few steps on the shapes data, then torch.save of the state_dict."""
import sys
from pathlib import Path

import torch

from mechinterp.data import load_dataset
from my_nets.tiny import Tiny

seed = int(sys.argv[1])
torch.manual_seed(seed)
data = load_dataset("shapes", "train", count=480, seed=0)
model = Tiny()
optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(2):
    for start in range(0, len(data.labels), 32):
        loss = torch.nn.functional.cross_entropy(model(data.images[start:start + 32]),
                                                 data.labels[start:start + 32])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
Path("my_weights").mkdir(exist_ok=True)
torch.save(model.state_dict(), "my_weights/tiny.pt")
'''
ZOO_ENTRY = '''
  my-tiny:                    # my own CNN and weights
    architecture: "my_nets.tiny:Tiny"
    kwargs: {width: 8, classes: 8}
    checkpoint: ../my_weights/tiny.pt
    dataset: shapes
    dataset_options: {count: 480, seed: 0}
    input_shape: [3, 32, 32]
    feature_layers: [features.0, features.1]
    classifier_layer: head
'''
FIGURE_SCRIPT = '''\
"""My figures: how well my CNN does, how strongly its features fire, and one that reads no model."""
import matplotlib.pyplot as plt
import torch

from mechinterp.data import load_dataset

FIGURES = {
    "mytalk/accuracy": {"make": "make_accuracy", "models": ["my-tiny"]},
    "mytalk/activation": {"make": "make_activation", "models": ["my-tiny"], "params": {"images": 64}},
    "mytalk/constant": {"make": "make_constant"},
}


def make_accuracy(ctx):
    accuracy = ctx.model_meta("my-tiny")["metrics"]["test_accuracy"]
    fig, axis = plt.subplots(figsize=(4, 3))
    axis.bar(["my-tiny"], [100 * accuracy])
    axis.set_ylabel("held-out accuracy (%)")
    ctx.save(fig)
    return {"test_accuracy": accuracy}


def make_activation(ctx):
    model = ctx.model("my-tiny")
    images = load_dataset("shapes", "test", count=480, seed=0).images[:ctx.params["images"]]
    with torch.no_grad():
        features = model.features(images.to(ctx.device))
    fig, axis = plt.subplots(figsize=(4, 3))
    axis.hist(features.flatten().cpu().numpy(), bins=30)
    ctx.save(fig)
    return {"mean_activation": float(features.mean())}


def make_constant(ctx):
    fig, axis = plt.subplots(figsize=(4, 3))
    axis.plot([0, 1], [0, 1])
    ctx.save(fig)
    return {"slope": 1.0}
'''
DECK = '''\
---
title: My own model
biblio:
  filename: mine.bib
---

# My own model

It reaches <Measured fig="mytalk/accuracy" value="test_accuracy" digits="4"/> on held-out shapes,
and its features fire <Measured fig="mytalk/activation" value="mean_activation" digits="6"/> on average [@myself2026tiny].

![](/figures/mytalk/accuracy.png)

---

# A line

![](/figures/mytalk/constant.png)

---
layout: biblio
---

# References
'''
BIB = '''\
@misc{myself2026tiny,
  author = {Myself, Anna},
  title = {A Tiny Network of My Own},
  year = {2026},
  howpublished = {My notebook},
}
'''


def run(command: list[str], root: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("VERBOSE", "MAKEFLAGS")}
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout,
                            env=environment)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def copy_repository(target: Path) -> Path:
    """The tracked files of this checkout, plus links to its .venv and talk/node_modules."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    (target / ".venv").symlink_to((REPO / ".venv").resolve())
    link_node_modules(target / "talk")
    for stamp_source in ("pyproject.toml", "talk/package-lock.json"):   # never reinstall
        os.utime(target / stamp_source, (0, 0))
    return target


def new_user(root: Path) -> None:
    """Everything the new user writes, then their first training run."""
    (root / "my_nets").mkdir()
    (root / "my_nets" / "__init__.py").write_text("")
    (root / "my_nets" / "blocks.py").write_text(BLOCKS)
    (root / "my_nets" / "tiny.py").write_text(TINY)
    (root / "train_tiny.py").write_text(TRAIN)
    zoo = root / "models" / "zoo.yaml"
    zoo.write_text(zoo.read_text().rstrip("\n") + "\n" + ZOO_ENTRY)
    (root / "figures_src" / "mytalk.py").write_text(FIGURE_SCRIPT)
    (root / "talk" / "mytalk.md").write_text(DECK)
    (root / "talk" / "mine.bib").write_text(BIB)
    train(root, seed=0)


def train(root: Path, seed: int) -> None:
    run([".venv/bin/python", "train_tiny.py", str(seed)], root)


@pytest.fixture
def own_project(tmp_path):
    root = copy_repository(tmp_path / "repo")
    new_user(root)
    return root


def made(output: str) -> set[str]:
    return {line.split()[1] for line in output.splitlines() if line.startswith("made ")}


def manifest(root: Path) -> dict:
    return json.loads((root / "talk" / "public" / "figures" / "manifest.json").read_text())["figures"]


def numbers(root: Path, figure_id: str) -> dict:
    return json.loads((root / "talk" / "public" / "figures" / f"{figure_id}.json").read_text())


def stale_reasons(root: Path) -> dict[str, str]:
    listing = run([".venv/bin/python", "-m", "figures_src.runner", "--list", "--profile", "quick",
                   "--only", "mytalk/*"], root).stdout
    return dict(line[len("stale  "):].split(": ", 1) for line in listing.splitlines()
                if line.startswith("stale  "))


def change_the_model(root: Path, step: str) -> str:
    """Re-save the weights, or change the helper's behaviour; return the words the reason uses."""
    if step == "checkpoint":
        train(root, seed=1)
        return "checkpoint ../my_weights/tiny.pt changed"
    blocks = root / "my_nets" / "blocks.py"
    blocks.write_text(blocks.read_text().replace("nn.ReLU()", "nn.LeakyReLU(0.2)"))
    return "architecture my_nets/blocks.py changed"


def assert_exactly_the_model_figures_reran(root: Path, output: str, before: dict) -> None:
    assert made(output) == MODEL_FIGURES, output[-3000:]
    after = manifest(root)
    for figure_id in MODEL_FIGURES:      # re-recorded with the model's new inputs
        assert after[figure_id]["inputs"]["input_hash"] != before[figure_id]["inputs"]["input_hash"]
        assert after[figure_id]["inputs"]["models"]["my-tiny"] != before[figure_id]["inputs"]["models"]["my-tiny"]
    assert after["mytalk/activation"]["outputs"] != before["mytalk/activation"]["outputs"]
    assert after["mytalk/constant"] == before["mytalk/constant"]     # not re-recorded at all


def test_own_model_figures_follow_its_checkpoint_and_its_source(own_project):
    """The figure half: `make figures ONLY='mytalk/*'`, with no `make models` at any point."""
    root = own_project
    make = ["make", "figures", "ONLY=mytalk/*", "PROFILE=quick", "DEVICE=cpu"]
    first = run(make, root)
    assert made(first.stdout + first.stderr) == ALL_FIGURES
    assert "zoo: building my-tiny (not built yet)" in first.stderr
    assert made(run(make, root).stdout) == set() and stale_reasons(root) == {}
    for step in ("checkpoint", "architecture"):
        before, values = manifest(root), numbers(root, "mytalk/activation")["mean_activation"]
        words = change_the_model(root, step)
        reasons = stale_reasons(root)
        said = f"{words} (model my-tiny: rebuilt first)"   # re-imported before its figures run
        assert set(reasons) == MODEL_FIGURES and all(said in reasons[f] for f in MODEL_FIGURES), reasons
        result = run(make, root)
        output = result.stdout + result.stderr
        assert f"zoo: building my-tiny ({words})" in output
        assert_exactly_the_model_figures_reran(root, output, before)
        assert numbers(root, "mytalk/activation")["mean_activation"] != values
        assert made(run(make, root).stdout) == set()


def quoted_numbers(root: Path) -> str:
    """The text of the built site (its HTML and scripts), where the slides' numbers end up."""
    site = root / "talk" / "dist-mytalk"
    return "\n".join(path.read_text(errors="replace") for path in site.rglob("*")
                     if path.is_file() and path.suffix in (".html", ".js"))


def assert_deck_quotes(root: Path) -> None:
    text = quoted_numbers(root)
    accuracy = f"{numbers(root, 'mytalk/accuracy')['test_accuracy']:.4f}"
    activation = f"{numbers(root, 'mytalk/activation')['mean_activation']:.6f}"
    assert accuracy in text and activation in text
    assert "Myself" in text and "a tiny network of my own" in text.lower()   # mine.bib, in APA sentence case


@pytest.mark.slow
def test_own_deck_builds_and_quotes_the_new_numbers(own_project):
    """The whole promise: `make slides DECK=talk/mytalk.md` alone, three times.

    Only this deck's figures are made, and its own .bib is rendered into the site at build time."""
    root = own_project
    make = ["make", "slides", "DECK=talk/mytalk.md", "PROFILE=quick", "DEVICE=cpu"]
    first = run(make, root)
    assert made(first.stdout + first.stderr) == ALL_FIGURES     # this deck's figures, no others
    assert_deck_quotes(root)
    for step in ("checkpoint", "architecture"):
        before = manifest(root)
        old_activation = f"{numbers(root, 'mytalk/activation')['mean_activation']:.6f}"
        change_the_model(root, step)
        result = run(make, root)
        assert_exactly_the_model_figures_reran(root, result.stdout + result.stderr, before)
        assert_deck_quotes(root)
        assert old_activation not in quoted_numbers(root)
    assert re.search(r"\b0 made\b", run(make, root).stdout)
