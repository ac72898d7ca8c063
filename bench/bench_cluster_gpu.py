"""The GPU profile through a real Dask scheduler and a worker started with `--resources GPU=1`
(issue 15 item 5; with it, issue 13's GPU training times), as

    make figures PROFILE=gpu DEVICE=cuda CLUSTER=tcp://127.0.0.1:PORT

runs it: the runner (here, in the repository) decides what is stale, trains the stale zoo models the
figures read on the worker, sends it each stale figure, and installs what comes back. The worker
runs in its own temporary folder and gets the code and checkpoints only through the runner.

    python3 -m bench.bench_cluster_gpu                 # on a lent GPU machine: bench/gpu_session.sh
    .venv/bin/python -m bench.bench_cluster_gpu --device cpu --profile quick --only 'zoo/*' --force
                                                       # the same path rehearsed on a CPU

Its figures go into bench/results/cluster.json under "gpu_..." keys, beside the loopback figures
of bench_cluster (which stay): the whole run's seconds, each figure's seconds and where it ran
(worker, device), each model's training seconds and device, and the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, machine_info
from mechinterp.atomic_file import write_atomic

REPO = Path(__file__).resolve().parents[1]


def run_figures(address: str, options) -> tuple[float, subprocess.CompletedProcess]:
    """The runner's command line as `make figures ... CLUSTER=address` gives it; (seconds, result)."""
    command = [sys.executable, "-m", "figures_src.runner", "--profile", options.profile, "--device",
               options.device, "--jobs", "1", "--cluster", address]
    command += (["--only", options.only] if options.only else []) + (["--force"] if options.force else [])
    started = time.perf_counter()
    try:
        made = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=options.timeout)
    except subprocess.TimeoutExpired as late:   # what it made so far is in the manifest: still recorded
        made = subprocess.CompletedProcess(command, f"timed out after {options.timeout} s",
                                           (late.stdout or b"").decode(errors="replace"),
                                           (late.stderr or b"").decode(errors="replace"))
    return time.perf_counter() - started, made


def figure_rows(manifest: Path, since: float) -> dict:
    """{figure id: seconds, worker, device} of the figures the run made (the manifest's newer entries)."""
    figures = json.loads(manifest.read_text())["figures"] if manifest.exists() else {}
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
    return {figure: {"seconds": entry["seconds"], "worker": entry["ran_on"]["worker"],
                     "device": entry["ran_on"]["device"]}
            for figure, entry in sorted(figures.items()) if entry.get("time", "") >= started}


def model_rows(models_dir: Path, since: float) -> dict:
    """{model: training seconds, device, worker} of the zoo models trained during the run."""
    rows = {}
    for meta_path in sorted(models_dir.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta_path.stat().st_mtime >= since and "train_seconds" in meta:
            rows[meta["name"]] = {"train_seconds": round(meta["train_seconds"], 2), "device": meta.get("device"),
                                  "worker": meta.get("ran_on", {}).get("worker", "here")}
    return rows


def merge_into_cluster_results(gpu_figures: dict) -> Path:
    """bench/results/cluster.json with its gpu_ keys replaced and the loopback figures kept."""
    path = RESULTS_DIR / "cluster.json"
    results = json.loads(path.read_text()) if path.exists() else {"name": "cluster", "figures": {}}
    kept = {k: v for k, v in results["figures"].items() if not k.startswith("gpu")}
    results["figures"] = kept | gpu_figures
    write_atomic(path, json.dumps(results, indent=2))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--profile", default="gpu", choices=["gpu", "full", "quick"])
    parser.add_argument("--only", default="", help="a figure pattern, as make's ONLY=")
    parser.add_argument("--force", action="store_true", help="remake the figures even if up to date")
    parser.add_argument("--timeout", type=int, default=420, help="seconds the runner may take")
    options = parser.parse_args(argv)
    import torch
    if options.device == "cuda" and not torch.cuda.is_available():   # `make bench` on a machine without one
        print("bench_cluster_gpu: no CUDA device here, nothing measured (rehearse the path with "
              "--device cpu --profile quick --only 'zoo/*' --force)")
        return 0
    sys.path.insert(0, str(REPO))
    from tests.test_runner_cluster import LocalCluster
    with tempfile.TemporaryDirectory() as folder:
        cluster = LocalCluster(Path(folder))
        try:
            cluster.start_worker("gpu-worker", "--resources", "GPU=1")
            cluster.wait_for_workers(1)
            since = time.time() - 1
            seconds, made = run_figures(cluster.address, options)
        finally:
            cluster.stop()
    print(made.stdout[-3000:], made.stderr[-6000:], sep="\n")
    figures = {f"gpu_{options.profile}_profile_seconds": {"value": round(seconds, 1), "unit": "s"},
               "gpu_runner_exit_code": {"value": made.returncode, "unit": ""},
               "gpu_runner_last_line": {"value": (made.stdout.strip().splitlines() or [""])[-1], "unit": ""},
               "gpu_figures": {"value": figure_rows(REPO / "talk/public/figures/manifest.json", since), "unit": ""},
               "gpu_models_trained": {"value": model_rows(REPO / "models", since), "unit": ""},
               "gpu_run": {"value": {"device": options.device, "profile": options.profile, "only": options.only, "force": options.force,
                                     "worker": "dask worker --resources GPU=1 --nthreads 1 on 127.0.0.1",
                                     "machine": machine_info()}, "unit": ""}}
    path = merge_into_cluster_results(figures)
    print(f"wrote the gpu_ figures into {path.relative_to(REPO)}")
    return made.returncode if isinstance(made.returncode, int) else 1


if __name__ == "__main__":
    sys.exit(main())
