"""Ctrl-C and the runner's lock, with real processes and real signals.

Each test runs `python -m figures_src.runner` over a scratch scripts folder whose figure is slow,
sends SIGINT to the runner alone or to its whole process group (what a terminal's Ctrl-C does) at
start-up (while it hashes a large checkpoint), while its worker is being spawned, and in the
middle of the figure, then checks that every process is gone within 2 s with a non-zero status
and one `interrupted:` line, that the outputs and manifest are byte-identical, and that the lock
and the staging folder are released.
"""
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from figures_src.runner.lock import lock_path

REPO = Path(__file__).resolve().parent.parent
STAGING = REPO / ".figure-staging"

SLOW = '''
import time
from pathlib import Path
import matplotlib.pyplot as plt

FIGURES = {"slow/plot": {"make": "make_plot", "models": ["big"]}}

def make_plot(ctx):
    for name in ctx.declared_models:    # a figure reads each model it declares
        ctx.model_meta(name)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [SLOPE, 0])
    ctx.save(fig)
    time.sleep(SLEEP)
    return {"slope": SLOPE}
'''
BIG_CHECKPOINT = 2 << 30   # sparse: hashing it keeps the runner in its start-up for a while


def write_script(scripts: Path, slope: int, sleep: float) -> None:
    (scripts / "slow.py").write_text(SLOW.replace("SLOPE", str(slope)).replace("SLEEP", str(sleep)))


@pytest.fixture
def workspace(tmp_path):
    scripts, figures, models = tmp_path / "scripts", tmp_path / "figures", tmp_path / "models"
    scripts.mkdir()
    write_script(scripts, 1, 0)
    (models / "big").mkdir(parents=True)
    with open(models / "big" / "checkpoint.pt", "wb") as handle:
        handle.truncate(BIG_CHECKPOINT)
    (models / "big" / "meta.json").write_text(json.dumps({"config": {"name": "big"}}))
    return scripts, figures, models


def runner_command(workspace, *extra):
    scripts, figures, models = workspace
    return [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts), "--figures-dir",
            str(figures), "--models-dir", str(models), "--profile", "quick", "--device", "cpu", *extra]


def start_runner(workspace) -> subprocess.Popen:
    return subprocess.Popen(runner_command(workspace), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every living process below pid (from /proc/<pid>/task/*/children)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def is_worker(pid: int) -> bool:
    """A figure worker: forked from the runner's forkserver, it names itself (runner.forked)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "figure-worker"
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, timeout=180.0, what="the runner to reach the moment to interrupt"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def snapshot(figures: Path) -> dict:
    return {p.relative_to(figures): p.read_bytes() for p in figures.rglob("*") if p.is_file()}


def lock_is_free(figures: Path) -> bool:
    with open(lock_path(figures), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def hashing_checkpoint(process, checkpoint: Path) -> bool:
    for fd in Path(f"/proc/{process.pid}/fd").glob("*"):
        try:
            if os.readlink(fd) == str(checkpoint):
                return True
        except OSError:
            pass
    return False


def worker_spawned(process) -> bool:
    return any(is_worker(pid) for pid in descendants(process.pid))


def figure_started(process) -> bool:
    return (STAGING / f"run-{process.pid}" / "slow__plot" / "plot.png").exists()


MOMENTS = {"start-up": lambda process, ws: hashing_checkpoint(process, ws[2] / "big" / "checkpoint.pt"),
           "spawn": lambda process, ws: worker_spawned(process),
           "mid-figure": lambda process, ws: figure_started(process)}


def send_sigint(pid: int, target: str) -> None:
    """'runner': kill -INT; 'group': a terminal's Ctrl-C; 'group+forwarded': that, and the copy
    a parent such as make passes on while the runner is cleaning up."""
    (os.killpg if target.startswith("group") else os.kill)(pid, signal.SIGINT)
    if target == "group+forwarded":
        time.sleep(0.02)
        os.kill(pid, signal.SIGINT)


def interrupt(process, target: str) -> tuple[float, str]:
    """SIGINT the running runner (see send_sigint); (seconds until it and every process below it
    had exited, its stderr)."""
    assert process.poll() is None, process.communicate()
    processes = [process.pid] + descendants(process.pid)
    sent = time.monotonic()
    send_sigint(process.pid, target)
    _, stderr = process.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=30, what="every process to exit")
    return time.monotonic() - sent, stderr


@pytest.mark.parametrize("target", ["runner", "group", "group+forwarded"])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_stops_everything_cleanly(workspace, moment, target):
    scripts, figures, _ = workspace
    made = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    before = snapshot(figures)
    write_script(scripts, 2, 60)                       # stale now, and slow
    process = start_runner(workspace)
    wait_for(lambda: MOMENTS[moment](process, workspace) or process.poll() is not None)
    stopped, stderr = interrupt(process, target)

    assert stopped < 2.0, f"{moment}: took {stopped:.2f} s to stop"
    assert process.returncode != 0
    interrupted = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert len(interrupted) == 1, stderr
    assert "Traceback" not in stderr, stderr
    if moment != "start-up":
        assert "slow/plot was not finished; its previous outputs are kept" in interrupted[0]
    assert snapshot(figures) == before                 # outputs and manifest byte-identical
    assert lock_is_free(figures)
    assert not (STAGING / f"run-{process.pid}").exists()



def forkserver_preloading(process) -> bool:
    """The runner's forkserver exists (multiprocessing's command line) and no worker yet: it is
    importing torch, before multiprocessing itself ignores SIGINT there."""
    found = descendants(process.pid)
    return not any(is_worker(pid) for pid in found) and any(
        b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in found if alive(pid))


def test_ctrl_c_while_the_forkserver_imports_torch_prints_no_traceback(workspace):
    """A terminal's Ctrl-C reaches the forkserver too; in its first seconds (the preload) it died
    with a KeyboardInterrupt traceback. Now it finishes starting the worker, which the runner
    stops, and everything is gone a moment later with one `interrupted:` line."""
    scripts, figures, _ = workspace
    write_script(scripts, 2, 60)
    process = start_runner(workspace)
    wait_for(lambda: forkserver_preloading(process) or process.poll() is not None)
    stopped, stderr = interrupt(process, "group")
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert len([line for line in stderr.splitlines() if line.startswith("interrupted:")]) == 1, stderr
    assert process.returncode != 0 and stopped < 8.0, f"took {stopped:.2f} s"
    assert lock_is_free(figures) and not (STAGING / f"run-{process.pid}").exists()

def test_a_worker_exits_when_its_runner_is_killed(workspace):
    write_script(workspace[0], 2, 60)
    process = start_runner(workspace)
    wait_for(lambda: figure_started(process))
    workers = [pid for pid in descendants(process.pid) if is_worker(pid)]
    os.kill(process.pid, signal.SIGKILL)                # no chance to clean up
    process.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10, what="the orphaned worker to exit")
    shutil.rmtree(STAGING / f"run-{process.pid}")      # what a killed runner cannot remove itself


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def hold_lock(figures: Path, recorded_pid: str, path: Path | None = None) -> subprocess.Popen:
    """Another process holding the flock with `recorded_pid` written in the file ('self': its own);
    `path`: another lock file than the runner's (the old one inside the figures folder)."""
    figures.mkdir(parents=True, exist_ok=True)
    path = path or lock_path(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    code = ("import fcntl, os, sys, time\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            f"os.write(fd, ({recorded_pid!r} if {recorded_pid!r} != 'self' else str(os.getpid())).encode())\n"
            "print('locked', flush=True)\ntime.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_lock_left_by_a_dead_runner_is_taken_over(workspace):
    figures = workspace[1]
    figures.mkdir(parents=True)
    gone = dead_pid()
    lock_path(figures).parent.mkdir(parents=True, exist_ok=True)
    lock_path(figures).write_text(f"{gone}\n")    # a runner that was killed (-9)
    (STAGING / f"run-{gone}" / "x").mkdir(parents=True)    # ... and left its staging folder
    result = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"was left by process {gone}, which is no longer running; taking it over" in result.stderr
    assert not (STAGING / f"run-{gone}").exists() and lock_is_free(figures)
    assert lock_path(figures).read_text() == ""   # released: no pid left behind


def test_a_lock_still_held_for_a_dead_process_is_taken_over(workspace):
    figures = workspace[1]
    gone = dead_pid()
    orphan = hold_lock(figures, str(gone))               # e.g. a worker of a runner killed long ago
    try:
        result = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        orphan.kill()
        orphan.wait()
    assert result.returncode == 0, result.stderr
    assert f"was left by process {gone}, which is no longer running; taking it over" in result.stderr
    assert "made   slow/plot" in result.stdout + result.stderr


def test_a_live_holder_is_refused_by_pid(workspace):
    holder = hold_lock(workspace[1], "self")
    try:
        result = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode != 0
    assert f"another `make figures` is writing to {workspace[1]} (process {holder.pid})" in result.stderr


def test_the_lock_stays_out_of_the_figures_folder_and_the_old_one_is_honoured_once(workspace):
    """Slidev copies talk/public/ into every site: no lock file may be left in the figures folder.
    A runner of an older checkout holding the old figures/.runner.lock is still waited for."""
    figures = workspace[1]
    holder = hold_lock(figures, "self", figures / ".runner.lock")
    try:
        refused = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode != 0 and f"(process {holder.pid})" in refused.stderr
    result = subprocess.run(runner_command(workspace), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "made   slow/plot" in result.stdout
    assert not [p for p in figures.rglob("*") if p.name.endswith(".lock")]
    assert lock_is_free(figures)


SLOW_ZOO = """
models:
  slow-a: {architecture: SmallCNN, kwargs: {width: 4}, dataset: shapes, dataset_options: {count: 320, seed: 0},
           seed: 0, epochs: 1000, batch_size: 32, learning_rate: 0.01}
  slow-b: {architecture: SmallCNN, kwargs: {width: 4}, dataset: shapes, dataset_options: {count: 320, seed: 0},
           seed: 1, epochs: 1000, batch_size: 32, learning_rate: 0.01}
"""


def builders(process) -> list[int]:
    """The runner's zoo builder processes (multiprocessing's spawned children)."""
    found = []
    for pid in descendants(process.pid):
        with contextlib.suppress(OSError):
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def training_for_a_while(process, seen: dict) -> bool:
    """True once two builders have run for 4 s: past torch's import, inside the training loop."""
    if len(builders(process)) < 2:
        return False
    seen.setdefault("since", time.monotonic())
    return time.monotonic() - seen["since"] > 4


def start_runner_training_models(workspace) -> subprocess.Popen:
    """A runner whose figure reads two stale zoo models, caught while it trains them side by side."""
    scripts, _, models = workspace
    (models / "zoo.yaml").write_text(SLOW_ZOO)
    (scripts / "slow.py").write_text(SLOW.replace('["big"]', '["slow-a", "slow-b"]')
                                     .replace("SLOPE", "1").replace("SLEEP", "0"))
    process = subprocess.Popen(runner_command(workspace, "--jobs", "2"), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = {}
    wait_for(lambda: training_for_a_while(process, seen) or process.poll() is not None)
    return process


@pytest.mark.parametrize("target", ["runner", "group"])
def test_ctrl_c_while_models_train_side_by_side_stops_every_builder(workspace, target):
    """The runner builds the stale models its figures read, two at a time in builder processes;
    Ctrl-C then ends them all within 5 s, with one line, and leaves no model half-written.

    Each model would train for about a minute (1000 epochs; 200 take 12 s alone), so 5 s shows
    that Ctrl-C cuts the training short; 2 s was too tight for two torch processes to be reaped
    on a loaded 2-core machine."""
    _, figures, models = workspace
    process = start_runner_training_models(workspace)
    stopped, stderr = interrupt(process, target)
    assert stopped < 5.0, f"took {stopped:.2f} s to stop"
    assert process.returncode != 0
    assert len([line for line in stderr.splitlines() if line.startswith("interrupted:")]) == 1, stderr
    assert "Traceback" not in stderr, stderr
    left = sorted(str(p.relative_to(models)) for p in models.rglob("*") if p.is_file())
    built = [name for name in left if not name.startswith("big/")]     # big: placed by the fixture
    assert not [name for name in built if name.endswith(".tmp") or name.endswith("meta.json")], left
    assert not figures.exists() or not any(figures.rglob("*.png"))


def test_builders_end_when_their_runner_is_killed(workspace):
    process = start_runner_training_models(workspace)
    training = builders(process)
    os.kill(process.pid, signal.SIGKILL)                # no chance to clean up
    process.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in training), timeout=5, what="the orphaned builders to exit")


def test_the_interrupted_line_counts_in_words_that_agree():
    from figures_src.runner.signals import Interrupted
    assert Interrupted(["a/one"], 2, 1).line() == (
        "interrupted: figure a/one was not finished; its previous outputs are kept; 2 not started; "
        "1 made before the interrupt is saved")
    assert Interrupted(["a/one", "b/two"], 0, 3).line() == (
        "interrupted: figures a/one, b/two were not finished; their previous outputs are kept; "
        "3 made before the interrupt are saved")
