"""Figures made on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, each started here in its own temporary working directory (with its own worker cache and
no PYTHONPATH), once for the module. Each test runs the real runner
(`python -m figures_src.runner --cluster ADDRESS`) as a subprocess.

The workers get the code by shipping (codeship.py), the checkpoints by content hash; the numbers
must equal a local run's; the manifest names the workers; a worker killed mid-figure leaves no
half-written file and the figure completes on the other; Ctrl-C cancels the remote task; code of
another commit is refused; an unreachable scheduler is one line within 10 s. The Slurm job script
dask-jobqueue generates for the documented cluster.yaml is checked without submitting it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
from figures_src.runner.cluster import raise_if_scheduler_lost  # noqa: E402
from tests.clusterkit import REPO, LocalCluster, entries, files_of, runner  # noqa: E402


SLOW = '''
import os, time
from pathlib import Path
import matplotlib.pyplot as plt

FIGURES = {"slow/one": {"make": "make_one", "params": {"marker": "MARKER", "sleep": SLEEP}}}

def make_one(ctx):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ctx.save(fig)
    marker = Path(ctx.params["marker"])
    if not marker.exists():            # the first attempt: say who we are, then take a while
        marker.write_text(str(os.getpid()))
        time.sleep(ctx.params["sleep"])
    return {"value": 42}
'''

NUMBERS = '''
import matplotlib.pyplot as plt
import numpy as np

FIGURES = {
    "numbers/weights": {"make": "make_weights", "models": ["net"]},
    "numbers/curve": {"make": "make_curve", "params": {"quick": {"n": 7}, "full": {"n": 7}}, "outputs": ["svg"]},
}

def make_weights(ctx):
    import torch
    ctx.model_meta("net")           # a figure reads each model it declares
    state = torch.load(ctx.models_dir / "net" / "checkpoint.pt", weights_only=True)
    norms = {name: float(tensor.norm()) for name, tensor in state.items()}
    fig, ax = plt.subplots()
    ax.bar(list(norms), list(norms.values()))
    ctx.save(fig)
    return {"norms": norms, "mean": float(torch.cat([t.flatten() for t in state.values()]).mean())}

def make_curve(ctx):
    x = np.linspace(0, 1, ctx.params["n"])
    fig, ax = plt.subplots()
    ax.plot(x, np.sin(3 * x))
    ctx.save(fig, "svg")
    return {"sum": float(np.sin(3 * x).sum()), "points": int(x.size)}
'''

SMALL = '''
import matplotlib.pyplot as plt

FIGURES = {
    "small/line": {"make": "make_line", "models": ["m1"]},
    "small/gpu": {"make": "make_line", "models": ["m1"], "resources": {"GPU": 1}},
}

def make_line(ctx):
    ctx.model_meta("m1")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ctx.save(fig)
    return {"checkpoint_bytes": (ctx.models_dir / "m1" / "checkpoint.pt").stat().st_size}
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.start_worker("w1")
        running.start_worker("w2")
        running.wait_for_workers(2)
        yield running
    finally:
        running.stop()


def small_workspace(tmp_path: Path):
    scripts, models = tmp_path / "scripts", tmp_path / "models"
    scripts.mkdir()
    (scripts / "small.py").write_text(SMALL)
    (models / "m1").mkdir(parents=True)
    (models / "m1" / "checkpoint.pt").write_bytes(os.urandom(300))
    (models / "m1" / "meta.json").write_text(json.dumps({"config": {"name": "m1"}}))
    return scripts, tmp_path / "figures", models


def test_figures_made_on_the_cluster_equal_a_local_run_and_name_their_workers(cluster, tmp_path):
    import torch
    scripts, models = tmp_path / "scripts", tmp_path / "models"
    scripts.mkdir()
    (scripts / "numbers.py").write_text(NUMBERS)
    (models / "net").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"fc.weight": torch.randn(5, 4), "fc.bias": torch.randn(5)}, models / "net" / "checkpoint.pt")
    (models / "net" / "meta.json").write_text(json.dumps({"config": {"name": "net"}}))
    local = runner(scripts, tmp_path / "local", models, "--jobs", "2")
    remote = runner(scripts, tmp_path / "remote", models, "--cluster", cluster.address)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    for name in ("weights", "curve"):
        numbers = [json.loads((tmp_path / run / "numbers" / f"{name}.json").read_text()) for run in ("local", "remote")]
        assert numbers[0] == numbers[1] and numbers[0]
    assert (tmp_path / "remote" / "numbers" / "curve.svg").read_text().startswith("<?xml")
    workers = set(cluster.worker_by_pid().values())
    made_on = {entry["ran_on"]["worker"] for entry in entries(tmp_path / "remote").values()}
    assert made_on <= workers and made_on
    for entry in entries(tmp_path / "remote").values():
        assert entry["ran_on"]["host"] == socket.gethostname() and entry["ran_on"]["device"] == "cpu"
    assert {e["ran_on"]["worker"] for e in entries(tmp_path / "local").values()} == {"local"}
    from figures_src.runner.staleness import file_hash
    checkpoint = file_hash(models / "net" / "checkpoint.pt")
    for name in ("w1", "w2"):   # each worker holds the shipped code and checkpoint in its own folder
        assert list((cluster.root / name / "cache" / "code").iterdir())
        assert (cluster.root / name / "cache" / "blobs" / checkpoint).read_bytes() == (models / "net" / "checkpoint.pt").read_bytes()


def test_a_gpu_figure_no_worker_can_take_fails_the_others_are_made_and_a_no_op_connects_nowhere(cluster, tmp_path):
    scripts, figures, models = small_workspace(tmp_path)
    result = runner(scripts, figures, models, "--cluster", cluster.address)
    assert result.returncode == 1
    assert "cannot small/gpu: no worker of the cluster offers GPU=1" in result.stderr
    assert result.stderr.count("no worker of the cluster offers GPU=1") == 1
    assert "--resources GPU=1" in result.stderr
    assert json.loads((figures / "small" / "line.json").read_text()) == {"checkpoint_bytes": 300}
    assert set(entries(figures)) == {"small/line"}
    with socket.socket() as probe:          # nothing stale: the run reaches for no scheduler at all
        probe.bind(("127.0.0.1", 0))
        nobody = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    no_op = runner(scripts, figures, models, "--ids", "small/line", "--cluster", nobody)
    assert no_op.returncode == 0 and "0 made, 1 up to date" in no_op.stdout
    # DEVICE=cuda: every figure needs a worker that offers a GPU (trial Q's ran on a CPU worker and
    # failed there with torch's "sees no CUDA GPU")
    on_cuda = runner(scripts, figures, models, "--ids", "small/line", "--force", "--device", "cuda",
                     "--cluster", cluster.address)
    assert on_cuda.returncode == 1 and "cannot small/line: no worker of the cluster offers GPU=1" in on_cuda.stderr
    assert "sees no CUDA GPU" not in on_cuda.stderr and "made   small/line" not in on_cuda.stdout


def test_a_worker_holding_another_commit_is_refused_naming_both(cluster, tmp_path):
    scripts, figures, models = small_workspace(tmp_path)
    first = runner(scripts, figures, models, "--ids", "small/line", "--force", "--cluster", cluster.address)
    assert first.returncode == 0, first.stderr           # both workers now hold this checkout's code
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "another commit"], check=True)
    ours = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout[:12]
    theirs = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True).stdout[:12]
    before = files_of(figures)
    refused = runner(scripts, figures, models, "--ids", "small/line", "--force", "--cluster", cluster.address, cwd=clone)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.startswith("refused:")]
    assert len(lines) == 2, refused.stderr
    assert all(f"code at {ours}" in line and f"the runner's is at {theirs}" in line for line in lines)
    assert "restart it" in lines[0] and "Traceback" not in refused.stderr
    assert files_of(figures) == before


FAILING = '''
import matplotlib.pyplot as plt

FIGURES = {"bad/one": {"make": "make_bad"}}

def make_bad(ctx):
    fig, ax = plt.subplots()
    return {"value": 1 / 0}
'''


def test_a_failure_on_a_worker_names_the_speakers_script_not_the_workers_copy(cluster, tmp_path):
    scripts, models = tmp_path / "scripts", tmp_path / "models"
    scripts.mkdir()
    models.mkdir()
    (scripts / "bad.py").write_text(FAILING)
    local = runner(scripts, tmp_path / "local", models)
    remote = runner(scripts, tmp_path / "remote", models, "--cluster", cluster.address)
    assert local.returncode == remote.returncode == 1
    frame = f"{scripts / 'bad.py'}:8 in make_bad: return {{\"value\": 1 / 0}}"
    assert frame in local.stderr and frame in remote.stderr, remote.stderr
    assert "cache" not in remote.stderr and "tasks" not in remote.stderr


def start_slow_figure(cluster, tmp_path, sleep: int):
    """(runner process, figures folder, its files before, marker): slow/one made once through the
    cluster, then forced again and running on a worker (the marker holds that worker's pid)."""
    scripts, figures = tmp_path / "scripts", tmp_path / "figures"
    scripts.mkdir()
    marker = tmp_path / "marker"
    (scripts / "slow.py").write_text(SLOW.replace("MARKER", str(marker)).replace("SLEEP", str(sleep)))
    marker.write_text("made before")
    assert runner(scripts, figures, tmp_path, "--cluster", cluster.address).returncode == 0
    before = files_of(figures)
    marker.unlink()
    process = runner(scripts, figures, tmp_path, "--force", "--cluster", cluster.address, wait=False)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the figure never started"
    return process, figures, before, marker


def test_ctrl_c_cancels_the_remote_task_and_keeps_the_manifest(cluster, tmp_path):
    process, figures, before, marker = start_slow_figure(cluster, tmp_path, 3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted: figure slow/one was not finished" in stderr
    assert files_of(figures) == before
    deadline = time.time() + 10             # the scheduler forgets the cancelled task
    while cluster.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.time() < deadline:
        time.sleep(0.2)
    assert cluster.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


def test_a_worker_killed_mid_figure_leaves_no_half_written_file_and_the_other_finishes_it(cluster, tmp_path):
    process, figures, before, marker = start_slow_figure(cluster, tmp_path, 60)
    time.sleep(0.3)
    victim = int(marker.read_text())
    workers = cluster.worker_by_pid()
    assert files_of(figures) == before                    # mid-figure: nothing written here yet
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    entry = entries(figures)["slow/one"]
    survivor = next(address for pid, address in workers.items() if pid != victim)
    assert entry["ran_on"]["worker"] == survivor
    after = files_of(figures)
    assert set(after) == set(before)
    from figures_src.runner.staleness import file_hash
    assert all(file_hash(figures / output) == digest for output, digest in entry["outputs"].items())
    cluster.start_worker("w3")                             # two workers again for whatever follows
    cluster.wait_for_workers(2)


def cluster_of_one(folder: Path) -> LocalCluster:
    """A scheduler of its own in `folder` with one worker, "only" (stopped if it fails to start)."""
    folder.mkdir()
    cluster = LocalCluster(folder)
    try:
        cluster.start_worker("only")
        cluster.wait_for_workers(1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def test_the_only_worker_killed_mid_figure_is_said_then_a_clear_failure_after_the_wait(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CLUSTER_WAIT", "3")
    alone = cluster_of_one(tmp_path / "alone")
    try:
        process, figures, before, marker = start_slow_figure(alone, tmp_path, 60)
        alone.workers["only"].kill()
        started = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    finally:
        alone.stop()
    assert time.monotonic() - started < 30 and process.returncode == 1
    assert f"the scheduler at {alone.address} has no workers left; waiting up to 3 s" in stderr
    assert "slow/one pending" in stderr and "Traceback" not in stderr
    assert f"FAILED slow/one: no worker of {alone.address} took it within 3 s" in stderr
    assert files_of(figures) == before


def test_a_scheduler_that_dies_mid_run_is_one_line_and_the_outputs_are_kept(tmp_path):
    """Trial Q: kill -9 of the scheduler mid-figure gave about 80 lines of tracebacks (asyncio's,
    distributed's and the runner's OSError)."""
    gone = cluster_of_one(tmp_path / "gone")
    try:
        process, figures, before, marker = start_slow_figure(gone, tmp_path, 60)
        watcher = gone.client                     # a client of its own, as the runner's is
        assert raise_if_scheduler_lost(watcher, gone.address, OSError("a local file")) is None
        gone.scheduler.kill()
        started = time.monotonic()
        _, stderr = process.communicate(timeout=90)
        while watcher.status == "running" and time.monotonic() - started < 60:
            time.sleep(0.2)
        with pytest.raises(SystemExit, match=rf"^error: lost the Dask scheduler at {gone.address} before the "
                           r"work was sent .*; nothing was changed here; restart the scheduler"):
            raise_if_scheduler_lost(watcher, gone.address, OSError("Timed out"))
        watcher.close()
    finally:
        for worker in gone.workers.values():
            worker.kill()
        gone.scheduler.wait()
    assert time.monotonic() - started < 45 and process.returncode == 1
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr[-3000:]
    assert (f"error: lost the Dask scheduler at {gone.address} mid-run (it stopped, or the network to it "
            "did): slow/one not made, its previous outputs kept; restart the scheduler and its workers, "
            "then run again") in stderr.splitlines(), stderr[-3000:]
    assert files_of(figures) == before


def test_a_run_started_before_any_worker_joined_waits_for_one(tmp_path, monkeypatch):
    """Trial Q: a scheduler just started, its workers on their way, failed the run at once."""
    monkeypatch.setenv("MECHINTERP_CLUSTER_WAIT", "60")
    scripts, figures, models = small_workspace(tmp_path)
    (tmp_path / "empty").mkdir()
    empty = LocalCluster(tmp_path / "empty")
    try:
        process = runner(scripts, figures, models, "--ids", "small/line", "--cluster", empty.address, wait=False)
        time.sleep(3)
        empty.start_worker("late")
        _, stderr = process.communicate(timeout=120)
    finally:
        empty.stop()
    assert process.returncode == 0, stderr
    assert (f"the scheduler at {empty.address} has no workers yet; waiting up to 60 s (MECHINTERP_CLUSTER_WAIT) "
            "for one to join (`dask worker`)") in stderr.splitlines()
    assert json.loads((figures / "small" / "line.json").read_text()) == {"checkpoint_bytes": 300}


def test_an_unreachable_scheduler_is_one_line_within_10_s(tmp_path):
    scripts, figures, models = small_workspace(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    result = runner(scripts, figures, models, "--ids", "small/line", "--cluster", nobody)
    assert time.monotonic() - started < 10
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if nobody in line] == [
        f"error: cannot reach the Dask scheduler at {nobody} within 5 s (OSError); "
        "start one (`dask scheduler`) or fix CLUSTER="]
    assert not figures.joinpath("small").exists()


@pytest.mark.parametrize("address, problem", [
    ("tpc://127.0.0.1:8795", "unknown protocol 'tpc' (known: ['inproc', 'tcp', 'tls', 'ucx', 'ws', 'wss'])"),
    ("tcp://127.0.0.1", "it has no port"),
    ("tcp://localhost:8795x", "the port '8795x' is not a number"),
])
def test_a_malformed_address_is_one_line_at_once_saying_what_is_wrong(tmp_path, address, problem):
    scripts, figures, models = small_workspace(tmp_path)
    started = time.monotonic()
    result = runner(scripts, figures, models, "--ids", "small/line", "--cluster", address)
    assert time.monotonic() - started < 5          # no connection attempt, no 5 s timeout
    assert result.returncode != 0 and "Traceback" not in result.stderr and "ignored" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: CLUSTER={address}: {problem}; the form is tcp://host:8786 (a `dask scheduler`'s address), or slurm"]


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")   # the job's scheduler's dashboard
def test_the_slurm_job_script_for_the_documented_config(tmp_path):
    from figures_src.runner.slurm import read_cluster_config, slurm_cluster
    documented = (REPO / "cluster.yaml").read_text()
    assert documented.strip() in (REPO / "README.md").read_text()
    config = read_cluster_config(REPO / "cluster.yaml")
    cluster = slurm_cluster(config)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert f"#SBATCH -p {config['partition']}" in script
    assert f"#SBATCH --cpus-per-task={config['cores']}" in script
    assert f"#SBATCH -t {config['walltime']}" in script
    assert f"#SBATCH --gres=gpu:{config['gpus']}" in script and f"--resources GPU={config['gpus']}" in script
    assert "--nthreads 1" in script and sys.executable in script
    (tmp_path / "bad.yaml").write_text("partition: gpu\ncores: 8\nmemroy: 32GB\nwalltime: '01:00:00'\n")
    with pytest.raises(SystemExit, match=r"bad.yaml: unknown key 'memroy'; missing 'memory'"):
        read_cluster_config(tmp_path / "bad.yaml")


TINY_ZOO = """models:
  tiny-mlp:
    architecture: MLP
    kwargs: {hidden: 8, classes: 10, input_shape: [1, 8, 8]}
    dataset: digits
    seed: 0
    epochs: 2
    batch_size: 64
    learning_rate: 0.01
  tiny-attn:
    architecture: "mechinterp.transformers.model:AttentionOnlyTransformer"
    kwargs: {d_vocab: 12, n_ctx: 16, d_model: 16, n_heads: 2, n_layers: 2}
    trainer: "mechinterp.transformers.training:train_zoo_entry"
    seed: 3
    steps: 30
    batch_size: 8
    learning_rate: 0.001
    snapshot_every: 10
"""


def test_make_models_on_the_cluster_trains_the_same_weights_as_here(cluster, tmp_path):
    from mechinterp.models.config import read_zoo
    from mechinterp.models.inputs import model_stale_reason
    from mechinterp.models.zoo import train_zoo
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        folder.mkdir()
        (folder / "zoo.yaml").write_text(TINY_ZOO)
    train_zoo(here / "zoo.yaml", here, device="cpu")
    shutil.copy(here / ".data-hashes.json", there)        # the zoo's own cache of the dataset's hash
    result = subprocess.run([sys.executable, "-m", "figures_src.runner.zoo_cluster", "--cluster", cluster.address,
                             "--models-dir", str(there), "--device", "cpu"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 trained on the cluster, 0 built here" in result.stdout   # the transformer too
    for name in ("tiny-mlp", "tiny-attn"):
        for file in ("checkpoint.safetensors", *(["snapshots.safetensors"] if name == "tiny-attn" else [])):
            assert (there / name / file).read_bytes() == (here / name / file).read_bytes()
        meta = json.loads((there / name / "meta.json").read_text())
        assert meta["ran_on"]["worker"] in set(cluster.worker_by_pid().values())
        assert model_stale_reason(name, read_zoo(there / "zoo.yaml"), there) is None



MLP_FIELDS = """    architecture: MLP
    kwargs: {hidden: 8, classes: 10, input_shape: [1, 8, 8]}
    dataset: digits
    epochs: 1
"""
DEVICE_ZOO = f"models:\n  tiny-mlp:\n{MLP_FIELDS}  gpu-mlp:\n{MLP_FIELDS}    devices: [cuda]\n"   # lines 2 and 7
BAD_LAYERS = f"  bad-layers:\n{MLP_FIELDS}    feature_layers: [fc9]\n"                              # 13 and 18
BROKEN = """  broken:
    architecture: MLP
    dataset: digitz
    epochs: 1
"""


def make_models(address: str, models: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "figures_src.runner.zoo_cluster", "--cluster", address,
                           "--models-dir", str(models), *extra], cwd=REPO, capture_output=True, text=True, timeout=300)


def device_zoo(folder: Path, text: str = DEVICE_ZOO) -> Path:
    folder.mkdir()
    (folder / "zoo.yaml").write_text(text)
    return folder / "zoo.yaml"


def test_make_models_with_its_scheduler_lost_mid_training_is_one_line_per_model(tmp_path):
    zoo = device_zoo(tmp_path / "there", "models:\n  slow-mlp:\n" + MLP_FIELDS.replace("epochs: 1", "epochs: 3000"))
    gone = cluster_of_one(tmp_path / "gone")
    try:
        building = subprocess.Popen([sys.executable, "-m", "figures_src.runner.zoo_cluster", "--cluster",
                                     gone.address, "--models-dir", str(zoo.parent)], cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not any(gone.client.processing().values()) and time.time() < deadline:
            time.sleep(0.2)
        assert any(gone.client.processing().values()), "the model never started training"
        gone.client.close()
        gone.scheduler.kill()
        _, stderr = building.communicate(timeout=90)
    finally:
        for worker in gone.workers.values():
            worker.kill()
        gone.scheduler.wait()
    assert building.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert ("zoo: cannot build 'slow-mlp' on the cluster: lost the Dask scheduler mid-run (it stopped, or the "
            "network to it did); restart it and its workers, then run again") in stderr.splitlines(), stderr[-3000:]
    assert not (zoo.parent / "slow-mlp" / "checkpoint.safetensors").exists()


def test_make_models_on_the_cluster_skips_what_the_zoo_skips_with_its_line(cluster, tmp_path):
    """DEVICE=auto is cpu on a cluster: a build of every model skips a `devices: [cuda]` entry,
    saying so in the local zoo's own words, and trains the others; DEVICE=cuda sends it to a GPU
    worker, and with none the line says which worker to start."""
    here, there = device_zoo(tmp_path / "here"), device_zoo(tmp_path / "there")
    local = subprocess.run([sys.executable, "-m", "mechinterp.models.zoo", "--config", str(here), "--models-dir",
                            str(here.parent), "--device", "cpu"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    skipped = "zoo: skipping gpu-mlp (devices: ['cuda'] in {}:7; this is cpu)"
    assert skipped.format(here) in local.stderr
    result = make_models(cluster.address, there.parent, "--device", "auto")
    assert result.returncode == 0, result.stderr
    assert skipped.format(there) in result.stderr and "cannot build" not in result.stderr
    assert "zoo: 1 trained on the cluster, 0 built here, 0 failed" in result.stdout
    cuda = make_models(cluster.address, there.parent, "--device", "cuda", "--names", "gpu-mlp")
    assert cuda.returncode == 1
    assert ("zoo: cannot build 'gpu-mlp' on the cluster on cuda: no worker of the cluster offers GPU=1; "
            "start one with `dask worker SCHEDULER --resources GPU=1`") in cuda.stderr


def test_a_model_that_fails_on_a_worker_is_the_zoos_one_block_at_the_users_zoo_yaml(cluster, tmp_path):
    """Each failure is the local zoo's block, naming the runner's zoo.yaml lines (never the worker's
    copy) and the worker; a broken entry is reported too; a misspelt --names is one line."""
    there = device_zoo(tmp_path / "there", DEVICE_ZOO + BAD_LAYERS + BROKEN)
    failed = make_models(cluster.address, there.parent, "--device", "auto", "--names", "bad-layers", "gpu-mlp")
    assert failed.returncode == 1 and "zoo: 0 trained on the cluster, 0 built here, 2 failed" in failed.stdout
    assert (f"zoo: cannot build 'bad-layers' ({there}:13)\n  {there}:18: feature_layers: MLP has no "
            "layer 'fc9'") in failed.stderr
    assert f"zoo: cannot build 'gpu-mlp' ({there}:7)\n  model 'gpu-mlp' trains only on cuda" in failed.stderr
    assert failed.stderr.count("cannot build") == 2 and "tasks/model-" not in failed.stderr
    assert failed.stderr.count("(on the cluster, at tcp://127.0.0.1:") == 2
    every = make_models(cluster.address, there.parent, "--device", "auto")
    assert every.returncode == 1 and "zoo: 1 trained on the cluster, 0 built here, 2 failed" in every.stdout
    assert f"zoo: cannot build 'broken' ({there}:19)\n  {there}:21: dataset 'digitz'" in every.stderr
    misspelt = make_models(cluster.address, there.parent, "--names", "bad-layrs")
    assert misspelt.returncode == 2 and misspelt.stderr.startswith(
        f"zoo: {there} has no model 'bad-layrs' (did you mean bad-layers?)")
    assert "Traceback" not in misspelt.stderr


def test_make_models_with_device_cuda_trains_on_the_worker_that_offers_a_gpu(tmp_path):
    """Two workers, one offering GPU=1: every model goes to that one, on cuda (on a machine
    without a GPU its torch refuses cuda, said as the zoo's block naming that worker)."""
    (tmp_path / "cluster").mkdir()
    running = LocalCluster(tmp_path / "cluster")
    try:
        running.start_worker("cpu")
        running.start_worker("gpu", "--resources", "GPU=1")
        running.wait_for_workers(2)
        workers = running.client.scheduler_info(n_workers=-1)["workers"]
        gpu, cpu = sorted(workers, key=lambda address: not workers[address]["resources"])
        result = make_models(running.address, device_zoo(tmp_path / "there").parent, "--device", "cuda")
    finally:
        running.stop()
    assert "zoo: skipping" not in result.stderr and cpu not in result.stderr, result.stderr
    assert result.stderr.count(f"at {gpu}") == 2, result.stderr   # tiny-mlp and gpu-mlp, each at the GPU worker
    assert result.returncode == 0 or "sees no CUDA GPU" in result.stderr
