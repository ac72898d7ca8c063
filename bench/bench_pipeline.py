"""Benchmark: the pipeline's no-op cost. `make figures` and `make slides` with nothing stale.

Targets (issue: deck pipeline): figures under 2 s, slides under 15 s on the 2-core machine.
Run after `make slides` with the same PROFILE (default full); each command is timed three times
and the median reported.

    PROFILE=quick python -m bench.bench_pipeline
"""
import os
import statistics
import subprocess
import time
from pathlib import Path

from bench.common import write_results

REPO = Path(__file__).resolve().parent.parent


def median_seconds(command: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return statistics.median(times)


def main() -> None:
    profile = os.environ.get("PROFILE", "full")
    figures = median_seconds(["make", "-s", "figures", f"PROFILE={profile}"])
    runner_only = median_seconds([str(REPO / ".venv/bin/python"), "-m", "figures_src.runner", "--profile", profile])
    slides = median_seconds(["make", "-s", "slides", f"PROFILE={profile}"])
    write_results("pipeline", {
        "make_figures_nothing_stale": {"value": figures, "unit": "s", "target": "< 2 s"},
        "runner_nothing_stale": {"value": runner_only, "unit": "s"},
        "make_slides_nothing_stale": {"value": slides, "unit": "s", "target": "< 15 s"},
        "profile": {"value": profile, "unit": ""},
    })


if __name__ == "__main__":
    main()
