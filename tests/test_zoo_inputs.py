"""The zoo's staleness in a speaker's project: every input of a model (its entry, dataset,
checkpoint, architecture source and the modules that source imports) is named when it changes,
exactly the figures that read a changed model are remade, and a broken model is one block of
errors while the others build and their figures run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.models.config import read_zoo
from mechinterp.models.zoo import load_meta, train_zoo
from tests.test_zoo import REPO, TINY_CNN, TINY_MLP, TINY_SHAPES, write_config


# --- everything a model is made of is an input ---

MY_BLOCKS = textwrap.dedent('''
    from torch import nn

    def conv_block(channels_in, channels_out):
        return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU())
''')
MY_TINY = textwrap.dedent('''
    import torch
    from torch import nn

    from my_nets.blocks import conv_block

    class Tiny(nn.Module):
        """A user's CNN in their own package, built from their own helper module."""
        def __init__(self, width=4, classes=8):
            super().__init__()
            self.features = conv_block(3, width)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            return self.head(torch.flatten(self.pool(self.features(x)), 1))
''')
OWN_ENTRY = {"architecture": "my_nets.tiny:Tiny", "kwargs": {"width": 4},
             "checkpoint": "../my_weights/tiny.pt", "dataset": "shapes",
             "dataset_options": TINY_SHAPES, "input_shape": [3, 32, 32]}


def user_project(root):
    """A user's own package (my_nets/tiny.py importing my_nets/blocks.py), weights saved with
    torch.save outside models/, and a zoo.yaml naming them; returns the zoo.yaml path."""
    (root / "my_nets").mkdir(parents=True)
    (root / "my_nets" / "__init__.py").write_text("")
    (root / "my_nets" / "blocks.py").write_text(MY_BLOCKS)
    (root / "my_nets" / "tiny.py").write_text(MY_TINY)
    (root / "models").mkdir()
    save_own_weights(root, seed=0)
    return write_config(root / "models", {"own": OWN_ENTRY, "mlp": TINY_MLP})


def save_own_weights(root, seed):
    """What the user does after training again: torch.save(model.state_dict(), path)."""
    namespace = {}
    exec(compile(MY_BLOCKS, "blocks", "exec"), namespace)
    torch.manual_seed(seed)
    model = nn.Module()
    model.features = namespace["conv_block"](3, 4)
    model.pool = nn.AdaptiveAvgPool2d(1)
    model.head = nn.Linear(4, 8)
    (root / "my_weights").mkdir(exist_ok=True)
    torch.save(model.state_dict(), root / "my_weights" / "tiny.pt")


def edit(path, old, new):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_each_input_of_a_model_is_named_when_it_changes(tmp_path, monkeypatch):
    from mechinterp.models.inputs import model_stale_reason
    config = user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = tmp_path / "models"

    def reason():
        return model_stale_reason("own", read_zoo(config), models)

    train_zoo(config, models, names=["own"], device="cpu")
    assert set(load_meta("own", models)["inputs"]["architecture"]) == {
        "my_nets/__init__.py", "my_nets/tiny.py", "my_nets/blocks.py"}   # not torch, not the stdlib
    assert reason() is None
    changes = [
        (lambda: save_own_weights(tmp_path, seed=1), "checkpoint ../my_weights/tiny.pt changed"),
        (lambda: edit(tmp_path / "my_nets" / "blocks.py", "nn.ReLU()", "nn.LeakyReLU(0.1)"),
         "architecture my_nets/blocks.py changed"),
        (lambda: edit(tmp_path / "my_nets" / "tiny.py", "flatten(", "flatten(0.5 * "),
         "architecture my_nets/tiny.py changed"),
        (lambda: write_config(models, {"own": {**OWN_ENTRY, "feature_layers": ["features"]},
                                       "mlp": TINY_MLP}), "zoo entry changed"),
        (lambda: write_config(models, {"own": {**OWN_ENTRY, "feature_layers": ["features"],
                                               "dataset_options": {"count": 160, "seed": 0}},
                                       "mlp": TINY_MLP}), "zoo entry changed, dataset changed"),
    ]
    for change, words in changes:
        change()
        assert reason() == words
        train_zoo(config, models, names=["own"], device="cpu")
        assert reason() is None
    (tmp_path / "my_weights" / "tiny.pt").unlink()
    assert reason() == "checkpoint ../my_weights/tiny.pt missing"


def test_an_edit_to_comments_docstrings_or_layout_of_an_architecture_does_not_retrain_it(tmp_path, monkeypatch,
                                                                                          capsys):
    from mechinterp.models.inputs import model_stale_reason
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = tmp_path / "models"
    trained = {**TINY_CNN, "architecture": "my_nets.tiny:Tiny", "input_shape": [3, 32, 32]}
    config = write_config(models, {"trained": trained})
    train_zoo(config, models, device="cpu")
    built = load_meta("trained", models)
    tiny, blocks = tmp_path / "my_nets" / "tiny.py", tmp_path / "my_nets" / "blocks.py"
    edit(tiny, '"""A user\'s CNN', '# tidied\n    """The CNN')                 # a comment, a docstring
    edit(tiny, "    def forward(self, x):", "\n    def forward(self, x):  # the pass")   # layout
    edit(blocks, "def conv_block(channels_in, channels_out):",
         'def conv_block(channels_in, channels_out):\n    """Conv then ReLU."""')
    assert model_stale_reason("trained", read_zoo(config), models) is None
    capsys.readouterr()
    train_zoo(config, models, device="cpu")
    assert "zoo: building" not in capsys.readouterr().err
    assert load_meta("trained", models) == built                        # not retrained
    edit(tiny, "flatten(", "flatten(0.5 * ")                               # what the code does
    assert model_stale_reason("trained", read_zoo(config), models) == "architecture my_nets/tiny.py changed"
    train_zoo(config, models, device="cpu")
    said = capsys.readouterr().err
    assert "zoo: building trained (architecture my_nets/tiny.py changed)" in said
    # a speaker who edits the class's default width sees that the entry's kwargs set it
    assert "zoo: trained's entry passes width=4 to my_nets.tiny:Tiny, over the defaults in its code" in said
    edit(tiny, "# tidied", "# tidied again")                                 # recorded anew at the rebuild
    assert model_stale_reason("trained", read_zoo(config), models) is None


def write_mnist(folder, seed):
    """A tiny MNIST in the IDX format (12 training and 6 test images), as a user's data files."""
    generator = np.random.default_rng(seed)
    (folder / "mnist").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 12), ("t10k", 6)):
        images = generator.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (folder / "mnist" / f"{split}-{kind}-ubyte").write_bytes(header + array.tobytes())


FIGURE_SCRIPT = textwrap.dedent('''
    FIGURES = {
        "own/accuracy": {"make": "make_accuracy", "models": ["own"], "outputs": []},
        "own/head": {"make": "make_head", "models": ["own"], "outputs": []},
        "other/mlp": {"make": "make_mlp", "models": ["mlp"], "outputs": []},
    }

    def make_accuracy(ctx):
        return {"accuracy": ctx.model_meta("own")["metrics"]["test_accuracy"]}

    def make_head(ctx):
        model = ctx.model("own")
        return {"norm": float(model.head.weight.norm())}

    def make_mlp(ctx):
        return {"accuracy": ctx.model_meta("mlp")["metrics"]["test_accuracy"]}
''')


def runner_project(tmp_path):
    """The user project plus a trained model on the user's own data files, and figure scripts."""
    config = user_project(tmp_path)
    write_mnist(tmp_path / "data", seed=0)
    mlp = {**TINY_MLP, "kwargs": {"hidden": 8, "classes": 10, "input_shape": [1, 28, 28]},
           "dataset": "mnist", "data_root": str(tmp_path / "data"), "epochs": 1}
    write_config(tmp_path / "models", {"own": OWN_ENTRY, "mlp": mlp})
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(FIGURE_SCRIPT)
    return config, mlp


def run_figures(root, *extra, env=None):
    command = [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(root / "scripts"),
               "--figures-dir", str(root / "figures"), "--models-dir", str(root / "models"),
               "--profile", "quick", "--device", "cpu", *extra]
    environment = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=environment)


def made(result) -> set[str]:
    return {line.split()[1] for line in (result.stdout + result.stderr).splitlines() if line.startswith("made ")}


def listed(result) -> dict[str, str]:
    return dict(line[len("stale  "):].split(": ", 1) for line in result.stdout.splitlines()
                if line.startswith("stale  "))


def test_a_change_to_any_input_of_a_model_remakes_exactly_its_figures(tmp_path):
    config, mlp = runner_project(tmp_path)
    first = run_figures(tmp_path)                        # no `make models`: the runner builds them
    assert first.returncode == 0, first.stderr
    assert made(first) == {"own/accuracy", "own/head", "other/mlp"}
    assert "zoo: building own (not built yet)" in first.stderr
    assert made(run_figures(tmp_path)) == set()
    own = {"own/accuracy", "own/head"}
    changes = [
        (lambda: edit(tmp_path / "my_nets" / "tiny.py", '"""A user\'s CNN', '# tidied\n    """The CNN'), set(),
         ""),                                                     # a comment and a docstring: nothing
        (lambda: save_own_weights(tmp_path, seed=1), own,
         "checkpoint ../my_weights/tiny.pt changed (model own: rebuilt first)"),
        (lambda: edit(tmp_path / "my_nets" / "blocks.py", "nn.ReLU()", "nn.LeakyReLU(0.1)"), own,
         "architecture my_nets/blocks.py changed (model own: rebuilt first)"),
        (lambda: edit(tmp_path / "my_nets" / "tiny.py", "flatten(", "flatten(0.5 * "), own,
         "architecture my_nets/tiny.py changed (model own: rebuilt first)"),
        (lambda: write_config(tmp_path / "models", {"own": {**OWN_ENTRY, "class_names": list("abcdefgh")},
                                                    "mlp": mlp}), own,
         "zoo entry changed (model own: class_names (none) -> ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']; rebuilt first)"),
        (lambda: write_mnist(tmp_path / "data", seed=1), {"other/mlp"}, "dataset changed: mnist/t10k-images-idx3-ubyte changed; mnist/t10k-labels-idx1-ubyte changed; "
             "mnist/train-images-idx3-ubyte changed and 1 more (model mlp: rebuilt first)"),
    ]
    for change, expected, words in changes:
        before = json.loads((tmp_path / "figures" / "manifest.json").read_text())["figures"]
        change()
        listing = run_figures(tmp_path, "--list")
        assert set(listed(listing)) == expected, listing.stdout
        assert all(words in listed(listing)[figure] for figure in expected), listing.stdout
        result = run_figures(tmp_path)
        assert result.returncode == 0, result.stderr
        assert made(result) == expected, (words, result.stdout + result.stderr)
        after = json.loads((tmp_path / "figures" / "manifest.json").read_text())["figures"]
        assert {f for f in after if after[f]["inputs"] != before[f]["inputs"]} == expected
        assert made(run_figures(tmp_path)) == set()
    quiet = run_figures(tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})   # nothing stale:
    assert made(quiet) == set() and quiet.returncode == 0                  # decided without torch
    assert "| torch\n" not in re.sub(r"\| +", "| ", quiet.stderr + "\n")
    norm = json.loads((tmp_path / "figures" / "own" / "head.json").read_text())["norm"]
    state = torch.load(tmp_path / "my_weights" / "tiny.pt", weights_only=True)
    assert norm == pytest.approx(float(state["head.weight"].norm()))  # the re-saved weights



def test_a_trained_models_figures_are_stale_for_its_zoo_entry_not_for_its_checkpoint(tmp_path):
    """The zoo rebuilds a model it trains before its figures: --list names the entry change (and
    its fields), never the checkpoint that change replaces, whether or not it is rebuilt yet."""
    (tmp_path / "models").mkdir()
    write_config(tmp_path / "models", {"mlp": TINY_MLP})
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(FIGURE_SCRIPT.replace(
        '"own/accuracy": {"make": "make_accuracy", "models": ["own"], "outputs": []},\n', "").replace(
        '"own/head": {"make": "make_head", "models": ["own"], "outputs": []},\n', ""))
    assert run_figures(tmp_path).returncode == 0
    three_epochs = {"mlp": {**TINY_MLP, "epochs": 3}}
    steps = [   # (what the speaker does, what --list must say)
        (lambda: write_config(tmp_path / "models", three_epochs), "zoo entry changed (model mlp: epochs 2 -> 3; rebuilt first)"),
        (lambda: train_zoo(str(tmp_path / "models" / "zoo.yaml"), tmp_path / "models", names=["mlp"], device="cpu"),
         "zoo entry changed (model mlp)"),
        (lambda: write_config(tmp_path / "models", {"mlp": TINY_MLP}),   # back: the 3-epoch model goes
         "zoo entry changed (model mlp: epochs 3 -> 2; rebuilt first)"),
    ]
    for change, words in steps:
        change()
        assert listed(run_figures(tmp_path, "--list")) == {"other/mlp": words}


def test_an_imported_models_figures_name_the_changed_fields_as_a_trained_models_do(tmp_path, monkeypatch):
    """An entry with weights of the speaker's own is re-imported before its figures: --list names
    its changed fields exactly as for a trained entry, then only the entry once it is rebuilt."""
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))   # the speaker's package, for the zoo built here
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(FIGURE_SCRIPT.replace(
        '"other/mlp": {"make": "make_mlp", "models": ["mlp"], "outputs": []},\n', ""))
    assert run_figures(tmp_path).returncode == 0
    write_config(tmp_path / "models", {"own": {**OWN_ENTRY, "kwargs": {"width": 4, "classes": 8},
                                               "class_names": list("abcdefgh")}, "mlp": TINY_MLP})
    words = ("zoo entry changed (model own: class_names (none) -> ['a', 'b', 'c', 'd', 'e', 'f', 'g', "
             "'h'], kwargs {'width': 4} -> {'classes': 8, 'width': 4}; rebuilt first)")
    assert listed(run_figures(tmp_path, "--list")) == {"own/accuracy": words, "own/head": words}
    train_zoo(str(tmp_path / "models" / "zoo.yaml"), tmp_path / "models", names=["own"], device="cpu")
    assert set(listed(run_figures(tmp_path, "--list")).values()) == {"zoo entry changed (model own)"}


# --- zoo problems a person can act on ---

BROKEN_ZOO = textwrap.dedent('''
    # a zoo with one good model and four a person has to fix
    models:
      mlp: {architecture: MLP, kwargs: {hidden: 8}, dataset: digits, seed: 0, epochs: 1,
            batch_size: 64, learning_rate: 0.01}

      wrong-path:
        architecture: "my_netz.tiny:Tiny"
        checkpoint: ../my_weights/tiny.pt

      refused:
        architecture: "my_nets.tiny:Tiny"
        checkpoint: ../my_weights/pickled.pt

      misfit:
        architecture: "my_nets.tiny:Tiny"
        kwargs: {width: 6}
        checkpoint: ../my_weights/tiny.pt

      missing:
        architecture: "my_nets.tiny:Tiny"
        checkpoint: ../my_weights/nowhere.pt

      buggy:
        architecture: "my_nets.buggy:Buggy"
        checkpoint: ../my_weights/tiny.pt
''')
BROKEN = {"wrong-path": "cannot import 'my_netz.tiny'", "refused": "pickled.pt was refused",
          "misfit": "tiny.pt do not fit Tiny", "missing": "nowhere.pt",
          "buggy": "RuntimeError: my layer sizes are wrong (at my_nets/buggy.py:6)"}


def broken_project(tmp_path, writes_marker):
    user_project(tmp_path)
    torch.save({"head.weight": torch.zeros(8, 4), "payload": writes_marker(tmp_path / "pwned")},
               tmp_path / "my_weights" / "pickled.pt")
    (tmp_path / "my_nets" / "buggy.py").write_text(
        "from torch import nn\n\nclass Buggy(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        raise RuntimeError('my layer sizes are wrong')\n")
    config = tmp_path / "models" / "zoo.yaml"
    config.write_text(BROKEN_ZOO)
    lines = {name: number for number, line in enumerate(BROKEN_ZOO.splitlines(), start=1)
             for name in BROKEN if line.strip() == f"{name}:"}
    return config, lines


def run_zoo(root, *extra, env=None):
    """The zoo's command line, run from the user's project folder as `make models` would be."""
    command = [sys.executable, "-m", "mechinterp.models.zoo", "--config", str(root / "models" / "zoo.yaml"),
               "--models-dir", str(root / "models"), "--device", "cpu", *extra]
    environment = {key: value for key, value in os.environ.items() if key != "VERBOSE"}
    environment.update({"PYTHONPATH": f"{root}{os.pathsep}{REPO}", **(env or {})})
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, env=environment)


def test_zoo_problems_are_one_block_each_and_the_other_models_still_build(tmp_path, writes_marker):
    config, lines = broken_project(tmp_path, writes_marker)
    result = run_zoo(tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for name, problem in BROKEN.items():
        header = f"zoo: cannot build {name!r} (models/zoo.yaml:{lines[name]})"   # relative to here
        assert header in result.stderr, result.stderr
        block = result.stderr.split(header, 1)[1].split("\nzoo: ", 1)[0]
        assert problem in block and len(block.strip().splitlines()) == 1, block
    # a wrong module path is the architecture's line (the entry's next one), where it is fixed
    assert f"\n  models/zoo.yaml:{lines['wrong-path'] + 1}: cannot import 'my_netz.tiny'" in result.stderr
    assert "could not be built: wrong-path, refused, misfit, missing, buggy" in result.stderr
    assert load_meta("mlp", tmp_path / "models")["metrics"]["test_images"] > 0    # built all the same
    assert not (tmp_path / "pwned").exists()
    verbose = run_zoo(tmp_path, "--names", "misfit", env={"VERBOSE": "1"})
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_figures_of_a_broken_model_fail_with_its_block_and_the_others_run(tmp_path, writes_marker):
    config, lines = broken_project(tmp_path, writes_marker)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(textwrap.dedent('''
        FIGURES = {"good/mlp": {"make": "make_mlp", "models": ["mlp"], "outputs": []},
                   "bad/misfit": {"make": "make_misfit", "models": ["misfit"], "outputs": []}}

        def make_mlp(ctx):
            return {"accuracy": ctx.model_meta("mlp")["metrics"]["test_accuracy"]}

        def make_misfit(ctx):
            return {"norm": float(ctx.model("misfit").head.weight.norm())}
    '''))
    result = run_figures(tmp_path)
    assert result.returncode == 1
    assert made(result) == {"good/mlp"}
    header = f"zoo: cannot build 'misfit' ({config}:{lines['misfit']})"
    assert result.stderr.count(header) == 1, result.stderr             # the zoo's block, once
    assert "cannot bad/misfit: its model 'misfit' could not be built" in result.stderr
    assert "failed (see above): bad/misfit" in result.stderr
    assert "Traceback" not in result.stderr
    assert "figures: 1 made, 0 up to date, 1 failed" in result.stdout
