"""The runner as a package of its own (figures_src/runner/): the figure scripts are exactly the
modules that declare FIGURES, decktools uses only the package's public API, a figure may read
only the models it declares, and no module of the package is over 450 lines."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from figures_src import runner
from figures_src.runner.context import FigureContext, UndeclaredModelError

REPO = Path(__file__).resolve().parent.parent

READS_AN_UNDECLARED_MODEL = '''
FIGURES = {"sneaky/reader": {"make": "make_reader", "models": ["m1"]}}

def make_reader(ctx):
    ctx.model('m2')
    return {}
'''


def test_the_figure_scripts_are_the_modules_that_declare_figures(tmp_path):
    (tmp_path / "plotting.py").write_text("def no_ticks(ax):\n    ax.set_xticks([])\n")
    (tmp_path / "context.py").write_text("# a helper that happens to share a runner module's name\n")
    (tmp_path / "style.py").write_text('FIGURES = {"style/a": {"make": "f"}}\ndef f(ctx):\n    return {}\n')
    (tmp_path / "_drafts.py").write_text('FIGURES = {"drafts/b": {"make": "f"}}\n')
    assert set(runner.declared_ids(tmp_path)) == {"style/a", "drafts/b"}
    assert set(runner.discover_figures(tmp_path, REPO)) == {"style/a", "drafts/b"}


def test_the_repository_scripts_folder_holds_no_runner_module():
    scripts = {path.stem for path in runner.declared_ids(runner.SCRIPTS_DIR).values()}
    assert scripts and not scripts & {"runner", "discover", "staleness", "context", "style", "reach"}
    assert "plotting" not in scripts                     # a helper module: it declares no FIGURES


def _imports(path: Path) -> set[str]:
    """'module' and 'module.name' for each import in a file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_decktools_uses_only_the_runner_api_and_never_the_engine():
    allowed = {"figures_src.runner"} | {f"figures_src.runner.{name}" for name in runner.__all__}
    for path in sorted((REPO / "decktools").glob("*.py")):
        imported = _imports(path)
        assert not {m for m in imported if m.split(".")[0] == "mechinterp"}, path
        assert {m for m in imported if m.startswith("figures_src")} <= allowed, path
    for name in runner.__all__:
        assert hasattr(runner, name)


def test_no_module_of_the_runner_is_over_450_lines():
    lengths = {path.name: len(path.read_text().splitlines()) for path in (REPO / "figures_src" / "runner").glob("*.py")}
    assert {"cli.py", "discover.py", "staleness.py", "worker.py", "jobs.py"} <= set(lengths)
    assert max(lengths.values()) <= 450, lengths


def test_a_figure_may_read_only_the_models_it_declares(tmp_path):
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "meta.json").write_text(json.dumps({"config": {"name": "m1"}}))
    ctx = FigureContext("sneaky/reader", {}, "quick", "cpu", tmp_path / "staging", tmp_path,
                        declared_models=("m1",), script="figures_src/sneaky.py")
    assert ctx.model_meta("m1") == {"config": {"name": "m1"}}
    for read in (ctx.model, ctx.model_meta):
        with pytest.raises(UndeclaredModelError) as refused:
            read("m2")
        message = str(refused.value)
        assert "'sneaky/reader'" in message and "'m2'" in message and "'m1'" in message
        assert "FIGURES['sneaky/reader']" in message and "figures_src/sneaky.py" in message
    with pytest.raises(FileNotFoundError):              # declared but not trained: the zoo's message
        FigureContext("a/b", {}, "quick", "cpu", tmp_path, tmp_path, declared_models=("m3",)).model_meta("m3")


def test_a_param_the_figure_lacks_names_the_entry_and_the_nearest_names(tmp_path):
    ctx = FigureContext("a/b", {"images": 3, "steps": 2}, "quick", "cpu", tmp_path, tmp_path, script="s.py")
    assert ctx.params["images"] == 3 and ctx.params.get("image") is None and dict(ctx.params) == {"images": 3, "steps": 2}
    with pytest.raises(KeyError) as missing:
        ctx.params["image"]
    assert str(missing.value) == ("no param 'image' in the quick profile (did you mean images?); it has images, "
                                  "steps: add it to FIGURES['a/b'][\"params\"] in s.py")


def test_a_layer_param_that_is_no_module_gets_the_nearest_of_all_modules(tmp_path):
    """Trial R: a layer param's hint came from feature_layers only ('layer2.0.conv3' -> layer3,
    layer2), and a functional step ('layer1.0.add') was only "not a layer"."""
    import torchvision
    from figures_src.runner.context import FigureInputError
    model = torchvision.models.resnet18(num_classes=10)
    model.feature_layers = ["layer1", "layer2", "layer3", "layer4"]
    for wanted, nearest in (("layer2.0.conv3", "'layer2.0.conv1'"), ("layer1.0.add", "'layer1.0'")):
        ctx = FigureContext("mine/ig", {"layer": wanted}, "quick", "cpu", tmp_path, tmp_path, script="figures_src/mine.py")
        with pytest.raises(FigureInputError) as refused:
            ctx.layer(model)
        message = str(refused.value)
        assert message.startswith(f"figure 'mine/ig': params 'layer': ResNet has no layer {wanted!r}. Did you mean ")
        assert nearest in message.split("Did you mean ")[1].split("?")[0]
        assert "python -m mechinterp.models.layers" in message
        assert message.endswith("set 'layer' in FIGURES['mine/ig'][\"params\"] in figures_src/mine.py to a module "
                                "name or an index into its feature_layers (layer1, layer2, layer3, layer4)")
    ctx = FigureContext("mine/ig", {"layer": 7}, "quick", "cpu", tmp_path, tmp_path, script="figures_src/mine.py")
    with pytest.raises(FigureInputError, match=r"params 'layer' is 7, which is not a layer of 'the model'"):
        ctx.layer(model)
    assert FigureContext("a/b", {"layer": -1}, "quick", "cpu", tmp_path, tmp_path).layer(model) == "layer4"


CROWDED = """
import matplotlib.pyplot as plt

FIGURES = {"lab/crowded": {"make": "make_crowded"}, "lab/roomy": {"make": "make_roomy"}}

def draw(**layout):
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.5), **layout)
    for axis in axes:
        axis.set_title("a panel title\\non two lines")
    fig.suptitle("A figure title in large type", fontsize=22)
    return fig

def make_crowded(ctx):
    ctx.save(draw())
    return {}

def make_roomy(ctx):
    ctx.save(draw(layout="constrained"))
    return {}
"""


def test_titles_that_overprint_each_other_are_said_beside_the_made_line(tmp_path):
    """Trial R: a suptitle printed over the panels' titles (our own from-noise too), unnoticed
    until the slide was on a screen. The figure is still made; the runner says what overlaps."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "lab.py").write_text(CROWDED)
    result = subprocess.run([sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts),
                             "--figures-dir", str(tmp_path / "figures"), "--models-dir", str(tmp_path / "models"),
                             "--profile", "quick", "--device", "cpu", "--jobs", "1"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    made = [i for i, line in enumerate(lines) if line.startswith("made   lab/crowded ")]
    assert made and lines[made[0] + 1] == (
        "  warning: lab/crowded: crowded.png: titles or labels overprint each other ('A figure title in large type' overlaps "
        "'a panel title on two lines'; 'A figure title in large type' overlaps 'a panel title on two lines'): "
        'give them room: plt.subplots(..., layout="constrained"), or fig.tight_layout() before ctx.save')
    assert not any("lab/roomy" in line for line in lines if "warning" in line)
    assert (tmp_path / "figures" / "lab" / "crowded.png").is_file()


def run_script_on_two_models(tmp_path, name: str, source: str):
    """(runner result, scripts folder, figures folder): the runner run on one script whose figures
    may read models m1 and m2 (a random checkpoint and a meta.json each)."""
    scripts, figures, models = tmp_path / "scripts", tmp_path / "figures", tmp_path / "models"
    scripts.mkdir()
    (scripts / name).write_text(source)
    for model in ("m1", "m2"):
        (models / model).mkdir(parents=True)
        (models / model / "checkpoint.pt").write_bytes(os.urandom(64))
        (models / model / "meta.json").write_text(json.dumps({"config": {"name": model}}))
    result = subprocess.run([sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts),
                             "--figures-dir", str(figures), "--models-dir", str(models),
                             "--profile", "quick", "--device", "cpu"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    return result, scripts, figures


def test_the_runner_fails_a_figure_that_reads_an_undeclared_model_and_says_what_to_add(tmp_path):
    result, scripts, figures = run_script_on_two_models(tmp_path, "sneaky.py", READS_AN_UNDECLARED_MODEL)
    assert result.returncode == 1
    assert "FAILED sneaky/reader: " in result.stderr
    assert f"UndeclaredModelError: figure 'sneaky/reader' reads model 'm2' (at {scripts / 'sneaky.py'}:5)" in result.stderr
    assert "To show a declared model, make that line read it (ctx.first_model() reads the first)" in result.stderr
    assert f"add 'm2' to \"models\" in FIGURES['sneaky/reader'] in {scripts / 'sneaky.py'}" in result.stderr
    assert f"{scripts / 'sneaky.py'}:5 in make_reader: ctx.model('m2')" in result.stderr  # the user's line
    assert not (figures / "sneaky").exists()             # nothing installed, nothing recorded


DECLARES_A_MODEL_IT_NEVER_READS = '''
FIGURES = {"idle/reader": {"make": "make_reader", "models": ["m1", "m2"]}}

def make_reader(ctx):
    import matplotlib.pyplot as plt
    ctx.model_meta('m1')
    ctx.save(plt.figure())
    return {}
'''


def test_the_runner_fails_a_figure_that_never_reads_a_model_it_declares(tmp_path):
    """A declared model the figure never read would make it stale for nothing, and "made" would
    claim it shows that model: the figure fails, naming the model and what to do, nothing installed."""
    result, scripts, figures = run_script_on_two_models(tmp_path, "idle.py", DECLARES_A_MODEL_IT_NEVER_READS)
    assert result.returncode == 1 and "made   idle/reader" not in result.stdout
    assert ("UnreadModelError: figure 'idle/reader' declares model 'm2' in \"models\" but never read it"
            in result.stderr)
    assert f"remove 'm2' from \"models\" in FIGURES['idle/reader'] in {scripts / 'idle.py'}" in result.stderr
    assert "trains its own models" in result.stderr and "'m1'" not in result.stderr
    assert not (figures / "idle").exists()


def test_a_model_the_profile_does_not_build_need_not_be_read(tmp_path):
    """`profiles: [full]` models are not built for a quick run, whose params do not read them
    (transformers/induction_universality reads its extra seeds only in full): only the others must be read."""
    from types import SimpleNamespace
    from figures_src.runner.discover import FigureSpec
    from figures_src.runner.planning import models_to_read
    (tmp_path / "zoo.yaml").write_text(
        "models:\n"
        "  m1: {architecture: MLP, kwargs: {hidden: 4, classes: 10, input_shape: [1, 8, 8]}, dataset: digits}\n"
        "  m2: {architecture: MLP, kwargs: {hidden: 4, classes: 10, input_shape: [1, 8, 8]}, dataset: digits,"
        " profiles: [full]}\n")
    spec = FigureSpec("a/b", tmp_path / "a.py", "make", ["m1", "m2"], {}, ["png"])
    assert models_to_read(spec, SimpleNamespace(models_dir=tmp_path, profile="quick")) == ["m1"]
    assert models_to_read(spec, SimpleNamespace(models_dir=tmp_path, profile="full")) == ["m1", "m2"]
