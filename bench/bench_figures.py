"""Benchmark figure compute: a whole profile as `make figures` makes it, or chosen figures alone.

    .venv/bin/python -m bench.bench_figures                          # every figure, full profile
    .venv/bin/python -m bench.bench_figures --ids universality/tcav --profile quick

Goal (issue 12): the full profile's figure compute on this 2-core machine in at most 5 minutes,
with `JOBS` at its default, the core count (it was 431 s when the issue was filed, TCAV 79 s).

Runs the runner itself (`python -m figures_src.runner --force`) into a temporary figures folder,
after the zoo has built every model the profile reads (so only figures are timed). Without --ids:
every figure the profile makes, `--jobs` at a time (default: the cores), each worker with its
share of the cores as `make figures` gives it; the wall time of that run is the goal's number,
beside the sum of the figures' own seconds and the slowest. With --ids: those figures one at a
time, one torch thread each, their seconds from the manifest. Writes bench/results/figures.json
with the load average before and after (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 300


def runner(figures_dir: str, profile: str, jobs: int, ids: list[str] | None = None,
           environment: dict | None = None) -> float:
    """Wall seconds of one forced runner run into `figures_dir` (it fails loudly)."""
    command = [sys.executable, "-m", "figures_src.runner", "--profile", profile, "--device", "cpu",
               "--jobs", str(jobs), "--figures-dir", figures_dir, "--force",
               *(["--ids", ",".join(ids)] if ids else [])]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **(environment or {})},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the runner failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def manifest_seconds(figures_dir: str) -> dict[str, float]:
    manifest = json.loads((Path(figures_dir) / "manifest.json").read_text())
    return {figure_id: entry["seconds"] for figure_id, entry in manifest["figures"].items()}


def whole_profile(profile: str, jobs: int) -> dict:
    """Every figure of the profile, forced, `jobs` at a time: wall, sum and the slowest."""
    subprocess.run([sys.executable, "-m", "mechinterp.models.zoo", "--device", "cpu"], cwd=REPO_ROOT,
                   check=True, stdout=subprocess.DEVNULL)           # every model, so only figures are timed
    with tempfile.TemporaryDirectory() as folder:
        wall = runner(folder, profile, jobs)
        seconds = manifest_seconds(folder)
    slowest = dict(sorted(seconds.items(), key=lambda item: -item[1])[:8])
    return {"whole_profile_wall_seconds": {"value": round(wall, 1), "unit": "s", "target": f"<= {GOAL_SECONDS} s",
                                           "jobs": jobs, "figures": len(seconds)},
            "sum_of_figure_seconds": {"value": round(sum(seconds.values()), 1), "unit": "s"},
            "slowest_figures_seconds": {"value": slowest, "unit": "s"}}


def chosen_figures(figure_ids: list[str], profile: str) -> dict:
    """Those figures one at a time, one torch thread each: their seconds and the sum."""
    with tempfile.TemporaryDirectory() as folder:
        runner(folder, profile, 1, ids=figure_ids, environment={"MECHINTERP_THREADS": "1"})
        seconds = manifest_seconds(folder)
    figures = {f"{figure_id} seconds": {"value": seconds[figure_id], "unit": "s"} for figure_id in figure_ids}
    figures["sum_seconds"] = {"value": sum(seconds[i] for i in figure_ids), "unit": "s"}
    return figures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", help="comma-separated figure ids (default: the whole profile)")
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="as make figures' JOBS")
    options = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    if options.ids:
        figures = chosen_figures([i for i in options.ids.split(",") if i], options.profile)
    else:
        figures = whole_profile(options.profile, options.jobs)
    figures["profile"] = {"value": options.profile, "unit": ""}
    figures["load_average_before"] = {"value": load_before, "unit": ""}
    figures["load_average_after"] = {"value": os.getloadavg()[0], "unit": ""}
    write_results("figures", figures)


if __name__ == "__main__":
    main()
