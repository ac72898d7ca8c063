"""Benchmark: the pipeline's no-op cost, and what a deck's build selects from a cold checkout.

Targets (issue 16): with nothing stale, `make figures` in at most 1 s and `make slides` in at most
3 s; from a cold checkout, `make slides DECK=talk/workshop.md` makes only the workshop's figures.
Run after `make figures` and `make slides` with the same PROFILE (default full); each command is
timed three times and the median reported. Where the time goes is reported beside the totals:
interpreter start, the runner's discovery (parsing scripts, following imports) and its planning
(hashing inputs and outputs).

    PROFILE=quick python -m bench.bench_pipeline
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")


def median_seconds(command: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        if "made" in result.stdout and " 0 made" not in result.stdout:
            raise SystemExit(f"{' '.join(command)} was not a no-op:\n{result.stdout}")
    return statistics.median(times)


def runner_phases(profile: str) -> dict[str, float]:
    """Seconds of the runner's discovery and planning, measured in this process."""
    from figures_src import runner
    from figures_src.runner import Manifest, discover_figures
    from figures_src.runner.planning import plan
    options = runner.parse_args(["--profile", profile])
    started = time.perf_counter()
    specs = discover_figures(options.scripts_dir, REPO)
    discovered = time.perf_counter()
    plan(specs, options, Manifest.load(options.figures_dir / "manifest.json"), options.figures_dir)
    return {"discover": discovered - started, "plan": time.perf_counter() - discovered}


def workshop_cold_selection() -> tuple[int, int, int]:
    """(figures the workshop deck selects, figures its build would make from an empty figures
    folder, figures the repository declares)."""
    from figures_src.runner import declared_ids
    with tempfile.TemporaryDirectory() as empty:
        listing = subprocess.run([PYTHON, "-m", "decktools.figures", "talk/workshop.md", "--list",
                                  "--figures-dir", empty], cwd=REPO, capture_output=True, text=True, check=True)
    lines = listing.stdout.splitlines()
    selected = [line for line in lines if line.startswith(("stale ", "cannot "))]
    stale = [line for line in lines if line.startswith("stale ")]
    return len(selected), len(stale), len(declared_ids(REPO / "figures_src"))


def main() -> None:
    profile = os.environ.get("PROFILE", "full")
    figures = median_seconds(["make", "-s", "figures", f"PROFILE={profile}"])
    runner_only = median_seconds([PYTHON, "-m", "figures_src.runner", "--profile", profile])
    interpreter = median_seconds([PYTHON, "-c", "import figures_src.runner"])
    slides = median_seconds(["make", "-s", "slides", f"PROFILE={profile}"])
    phases = runner_phases(profile)
    selected, stale, declared = workshop_cold_selection()
    write_results("pipeline", {
        "make_figures_nothing_stale": {"value": figures, "unit": "s", "target": "<= 1 s"},
        "runner_nothing_stale": {"value": runner_only, "unit": "s"},
        "runner_interpreter_and_imports": {"value": interpreter, "unit": "s"},
        "runner_discover": {"value": phases["discover"], "unit": "s"},
        "runner_plan_hashing": {"value": phases["plan"], "unit": "s"},
        "make_slides_nothing_stale": {"value": slides, "unit": "s", "target": "<= 3 s"},
        "workshop_cold_selected_figures": {"value": selected, "unit": "figures",
                                           "target": "the workshop's own figures only"},
        "workshop_cold_stale_figures": {"value": stale, "unit": "figures"},
        "declared_figures": {"value": declared, "unit": "figures"},
        "profile": {"value": profile, "unit": ""},
    })


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
