"""Benchmark the runner on a Dask cluster on loopback (issue 15): a real `dask scheduler` and
`dask worker` processes on 127.0.0.1, each in its own folder (tests/test_runner_cluster.py's
LocalCluster, the one implementation).

    .venv/bin/python -m bench.bench_cluster            # writes bench/results/cluster.json

1. Task overhead: a figure that does nothing, submitted as the runner submits it (cluster.py's
   remote_job and shipped task), from submit to its result (files and numbers) back here, minus
   the figure's own seconds; the median of REPEATS after a warm-up (goal: at most 100 ms).
2. Four independent CPU-bound figures on two workers against the same four on one (the tasks
   restricted to it), timed alternately; the ratio (goal: at most 0.6). Each figure gets one
   thread (MECHINTERP_THREADS=1 and one BLAS thread), so two workers use two cores. Each takes
   about 1 s of work, the lightest figure of the main deck (zoo/accuracy, 1.3 s; most take 5 to
   50 s): figures of a tenth of that would measure the round trips, not the scaling.
3. A no-op `make figures CLUSTER=...` (the command make runs, python -m figures_src.runner with
   --cluster, over figures already up to date): it must contact no worker. Measured by the
   scheduler's and the workers' task-transition counters before and after, which any task moves.
4. GPU (issue 15 item 5): not measured here; no GPU machine was lent to this task.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results

REPEATS = 20
WORK_ROUNDS = 3
SVDS_PER_FIGURE = 80          # about 1 s on one core of the 2-core machine
NO_OP = '''
FIGURES = {"noop/nothing": {"make": "make_nothing", "outputs": []},
           "work/a": {"make": "make_work", "params": {"seed": 0}, "outputs": []},
           "work/b": {"make": "make_work", "params": {"seed": 1}, "outputs": []},
           "work/c": {"make": "make_work", "params": {"seed": 2}, "outputs": []},
           "work/d": {"make": "make_work", "params": {"seed": 3}, "outputs": []}}

def make_nothing(ctx):
    return {}

def make_work(ctx):
    import numpy as np
    matrix = np.random.default_rng(ctx.params["seed"]).standard_normal((260, 260))
    return {"singular": float(sum(np.linalg.svd(matrix)[1].max() for _ in range(WORK)))}
'''


def options_for(scripts: Path, figures: Path, address: str):
    from figures_src.runner.cli import parse_args
    return parse_args(["--scripts-dir", str(scripts), "--figures-dir", str(figures), "--models-dir",
                       str(scripts), "--profile", "quick", "--device", "cpu", "--cluster", address])


def submit(client, spec, options, code_id, workers=None):
    from figures_src.runner.cluster import remote_job, shipped
    return client.submit(shipped("make_figure_remotely"), remote_job(spec, options, code_id, {}),
                         pure=False, workers=workers)


def task_overhead(client, spec, options, code_id) -> dict:
    """Median seconds from submit to the returned result, less the figure's own time."""
    submit(client, spec, options, code_id).result()   # warm-up: imports on the worker
    overheads = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        outcome = submit(client, spec, options, code_id).result()
        overheads.append(time.perf_counter() - started - outcome["result"]["seconds"])
    return {"task_overhead_median_ms": {"value": round(1000 * statistics.median(overheads), 1), "unit": "ms"},
            "task_overhead_max_ms": {"value": round(1000 * max(overheads), 1), "unit": "ms"},
            "task_overhead_goal_ms": {"value": 100, "unit": "ms"}}


def four_figures(client, specs, options, code_id, workers) -> float:
    started = time.perf_counter()
    futures = [submit(client, spec, options, code_id, workers) for spec in specs]
    for future in futures:
        assert "result" in future.result(), future.result()
    return time.perf_counter() - started


def scaling(client, specs, options, code_id) -> dict:
    everyone = sorted(client.scheduler_info(n_workers=-1)["workers"])
    four_figures(client, specs, options, code_id, None)          # warm-up on both workers
    one, two = [], []
    for _ in range(WORK_ROUNDS):
        one.append(four_figures(client, specs, options, code_id, everyone[:1]))
        two.append(four_figures(client, specs, options, code_id, None))
    ratio = statistics.median(two) / statistics.median(one)
    return {"four_figures_one_worker_s": {"value": round(statistics.median(one), 3), "unit": "s"},
            "four_figures_two_workers_s": {"value": round(statistics.median(two), 3), "unit": "s"},
            "two_over_one_worker_ratio": {"value": round(ratio, 3), "unit": "x (goal <= 0.6)"}}


def transitions(client) -> dict:
    return {"scheduler": client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter),
            **client.run(lambda dask_worker: dask_worker.state.transition_counter)}


def no_op_run(client, scripts: Path, figures: Path, address: str) -> dict:
    command = [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts), "--figures-dir",
               str(figures), "--models-dir", str(scripts), "--profile", "quick", "--device", "cpu",
               "--ids", "noop/nothing", "--cluster", address]
    made = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    before = transitions(client)
    started = time.perf_counter()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    after = transitions(client)
    return {"no_op_seconds": {"value": round(seconds, 3), "unit": "s"},
            "no_op_output": {"value": again.stdout.strip().splitlines()[-1], "unit": ""},
            "no_op_task_transitions": {"value": sum(after.values()) - sum(before.values()),
                                       "unit": "transitions on scheduler and workers (0: no contact)"}}


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.test_runner_cluster import LocalCluster
    from figures_src.runner.cluster import ship_code
    from figures_src.runner.discover import discover_figures
    from figures_src.runner.paths import REPO_ROOT
    for threads in ("MECHINTERP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[threads] = "1"                               # the workers inherit them: one core each
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "scripts").mkdir()
        (root / "scripts" / "bench_figures.py").write_text(NO_OP.replace("WORK", str(SVDS_PER_FIGURE)))
        cluster = LocalCluster(root)
        try:
            cluster.start_worker("w1")
            cluster.start_worker("w2")
            cluster.wait_for_workers(2)
            options = options_for(root / "scripts", root / "figures", cluster.address)
            specs = discover_figures(root / "scripts", REPO_ROOT)
            code_id = ship_code(cluster.client).code_id
            figures = task_overhead(cluster.client, specs["noop/nothing"], options, code_id)
            figures |= scaling(cluster.client, [specs[f"work/{x}"] for x in "abcd"], options, code_id)
            figures |= no_op_run(cluster.client, root / "scripts", root / "figures", cluster.address)
        finally:
            cluster.stop()
    figures["gpu"] = {"value": "not measured: no GPU machine was lent to this task (issue 15 item 5)", "unit": ""}
    figures["load_average_before"] = {"value": round(load_before, 2), "unit": ""}
    figures["load_average_after"] = {"value": round(os.getloadavg()[0], 2), "unit": ""}
    write_results("cluster", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
