"""The speaker's own packages on a real Dask cluster (tests/clusterkit.py: a scheduler and a
worker on 127.0.0.1, started without PYTHONPATH to any project).

A project folder is made in tmp_path from this checkout's engine and runner (a git repository of
its own, as a speaker's project is) plus the speaker's package my_nets/: a zoo architecture
(`architecture: my_nets.tiny:Tiny`) and a module the figure script imports. The runner must ship
both with the code, name the code by them (an edit refuses a worker that imported the old copy,
rather than let it compute with the old class), and make the figure right after a restart.
"""
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("distributed")
from tests.clusterkit import REPO, LocalCluster, runner  # noqa: E402

TINY = '''
import torch
from torch import nn
from my_nets.consts import SCALE

class Tiny(nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.lin = nn.Linear(width, 1)

    def forward(self, x):
        return self.lin(x) * SCALE
'''

SCRIPT = '''
import matplotlib.pyplot as plt

FIGURES = {"own/value": {"make": "make_value", "models": ["own"]}}

def make_value(ctx):
    import torch
    from my_nets.consts import OFFSET
    model = ctx.model("own")
    fig, ax = plt.subplots()
    ctx.save(fig)
    return {"value": float(model(torch.ones(1, 2))) + OFFSET}
'''

ZOO = """models:
  own:
    architecture: "my_nets.tiny:Tiny"
    kwargs: {width: 2}
    checkpoint: ../my_weights/tiny.pt
"""


def speaker_project(root):
    """A git checkout of this engine and runner, with the speaker's package, weights and zoo."""
    from figures_src.runner.codeship import shipped_files
    for name in shipped_files(REPO):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, root / name)
    for script in (root / "figures_src").glob("*.py"):   # the deck's own figures are not the point
        if "FIGURES" in script.read_text():
            script.unlink()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "engine"], check=True)
    (root / "my_nets").mkdir()
    (root / "my_nets" / "__init__.py").write_text("")
    (root / "my_nets" / "tiny.py").write_text(TINY)
    (root / "my_nets" / "consts.py").write_text("SCALE = 1.0\nOFFSET = 0.0\n")
    (root / "figures_src" / "own.py").write_text(SCRIPT)
    (root / "models").mkdir()
    (root / "models" / "zoo.yaml").write_text(ZOO)
    (root / "my_weights").mkdir()
    import torch
    state = {"lin.weight": torch.tensor([[0.25, 0.5]]), "lin.bias": torch.tensor([0.125])}
    torch.save(state, root / "my_weights" / "tiny.pt")


def run(project, cluster):
    return runner(project / "figures_src", project / "figures", project / "models",
                  "--cluster", cluster.address, cwd=project)


def value(project) -> float:
    return json.loads((project / "figures" / "own" / "value.json").read_text())["value"]


def test_the_speakers_package_ships_and_an_edit_never_runs_the_old_copy(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    speaker_project(project)
    (tmp_path / "cluster").mkdir()
    cluster = LocalCluster(tmp_path / "cluster")
    try:
        cluster.start_worker("w1")
        cluster.wait_for_workers(1)
        first = run(project, cluster)
        assert first.returncode == 0, first.stderr
        assert value(project) == pytest.approx(0.875)          # 0.25 + 0.5 + 0.125, SCALE 1
        shipped = tmp_path / "cluster" / "w1" / "cache" / "code"   # the architecture, which no script imports
        assert [path.read_text() for path in shipped.glob("*/my_nets/tiny.py")] == [TINY]
        (project / "my_nets" / "consts.py").write_text("SCALE = 3.0\nOFFSET = 0.0\n")
        listed = subprocess.run([sys.executable, "-m", "figures_src.runner", "--list", "--scripts-dir",
                                 str(project / "figures_src"), "--figures-dir", str(project / "figures"),
                                 "--models-dir", str(project / "models"), "--profile", "quick"],
                                cwd=project, capture_output=True, text=True, timeout=120)
        assert "my_nets/consts.py changed" in listed.stdout + listed.stderr
        stale_worker = run(project, cluster)                  # w1 imported the old my_nets
        assert stale_worker.returncode != 0
        assert "refused:" in stale_worker.stderr and "restart it" in stale_worker.stderr
        assert value(project) == pytest.approx(0.875)          # the old figure is kept, not redone wrong
        cluster.workers.pop("w1").kill()
        cluster.start_worker("w2")
        cluster.wait_for_names("w2")
        again = run(project, cluster)
        assert again.returncode == 0, again.stderr
        assert value(project) == pytest.approx(3 * 0.875)
    finally:
        cluster.stop()
