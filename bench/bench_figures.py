"""Benchmark figure compute: the seconds the runner records for chosen figures, in one profile.

    .venv/bin/python -m bench.bench_figures                          # SLOWEST, full profile
    .venv/bin/python -m bench.bench_figures --ids universality/tcav --profile quick

Runs the runner itself (`python -m figures_src.runner --ids ... --force`) into a temporary figures
folder, one figure at a time with one torch thread each, as `make figures` gives every worker on
a machine whose JOBS is its core count, and reads each figure's compute seconds from that
folder's manifest. Writes bench/results/figures.json with the load average before and after: the
machine is shared, so the sum is only comparable with another sum measured at a similar load.
Timing the slow figures and summing is what the issue asks for instead of rerunning the whole
full profile (the whole profile is `make figures PROFILE=full FORCE=1`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import write_results

REPO_ROOT = Path(__file__).resolve().parent.parent
# The full profile's slowest figure (79 s of 431 s when the issue was filed).
SLOWEST = ["universality/tcav"]


def figure_seconds(figure_ids: list[str], profile: str) -> dict[str, float]:
    """{figure id: compute seconds} from a forced runner run into a temporary figures folder."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "figures_src.runner", "--ids", ",".join(figure_ids), "--force",
                   "--profile", profile, "--device", "cpu", "--jobs", "1", "--figures-dir", folder]
        environment = {**os.environ, "MECHINTERP_THREADS": "1"}
        subprocess.run(command, cwd=REPO_ROOT, env=environment, check=True)
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    return {figure_id: manifest["figures"][figure_id]["seconds"] for figure_id in figure_ids}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", default=",".join(SLOWEST), help="comma-separated figure ids")
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    options = parser.parse_args(argv)
    figure_ids = [i for i in options.ids.split(",") if i]
    load_before = os.getloadavg()[0]
    seconds = figure_seconds(figure_ids, options.profile)
    figures = {f"{figure_id} seconds": {"value": value, "unit": "s"} for figure_id, value in seconds.items()}
    figures["sum_seconds"] = {"value": sum(seconds.values()), "unit": "s"}
    figures["profile"] = {"value": options.profile, "unit": ""}
    figures["load_average_before"] = {"value": load_before, "unit": ""}
    figures["load_average_after"] = {"value": os.getloadavg()[0], "unit": ""}
    write_results("figures", figures)


if __name__ == "__main__":
    main()
