"""Benchmark: a cold `make slides` on a fresh clone, stage by stage.

Goal (issue 13): at most 10 minutes on this 2-core machine, including the install (torch 2.14.1
with torchvision 0.29.1) and every zoo model. The clone is made from this repository's HEAD into
a temporary folder, and `make slides` is run there as its own prerequisites in order, each timed:
venv (pip), node (npm ci), deck-figures (the zoo models the main deck's figures read, built side
by side, then those figures; PROFILE, JOBS), slides (check, prepare, Slidev build; nothing left to
make). Their sum is a cold `make slides`. Within deck-figures, the zoo's share is the time of its
last `zoo:` line; the slowest figures come from the manifest the run wrote.

    PROFILE=full python -m bench.bench_cold          # writes bench/results/cold.json
    python -m bench.bench_cold --keep /tmp/cold      # and leaves the built clone there
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import write_results

REPO = Path(__file__).resolve().parent.parent
STAGES = ("venv", "node", "deck-figures", "slides")
GOAL_SECONDS = 600


def timed_stage(clone: Path, stage: str, profile: str) -> tuple[float, list[tuple[float, str]]]:
    """(seconds, [(seconds since the start, line), ...]) of `make <stage>` in the clone."""
    started = time.perf_counter()
    process = subprocess.Popen(["make", stage, f"PROFILE={profile}", "DEVICE=cpu"], cwd=clone,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.perf_counter() - started, line.rstrip()) for line in process.stdout]
    if process.wait() != 0:
        raise SystemExit(f"make {stage} failed:\n" + "\n".join(line for _, line in lines[-60:]))
    seconds = time.perf_counter() - started
    print(f"  make {stage:12s} {seconds:7.1f} s", flush=True)
    return seconds, lines


def zoo_seconds(lines: list[tuple[float, str]]) -> float:
    """When the zoo's last line came: its models are built before any figure starts."""
    return max((at for at, line in lines if line.startswith("zoo: ")), default=0.0)


def slowest_figures(clone: Path, count: int = 8) -> dict[str, float]:
    manifest = json.loads((clone / "talk" / "public" / "figures" / "manifest.json").read_text())
    seconds = {figure_id: entry.get("seconds") for figure_id, entry in manifest["figures"].items()}
    ranked = sorted((s, f) for f, s in seconds.items() if isinstance(s, (int, float)))[::-1]
    return {figure_id: s for s, figure_id in ranked[:count]}


def cold_build(clone: Path, profile: str) -> tuple[dict[str, float], dict[str, float]]:
    """({stage: seconds, "zoo within deck-figures": seconds}, slowest figures) of a fresh clone
    of HEAD built in `clone`."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    stages, zoo = {}, 0.0
    for stage in STAGES:
        stages[stage], lines = timed_stage(clone, stage, profile)
        zoo = zoo_seconds(lines) if stage == "deck-figures" else zoo
    return stages, {"zoo": zoo, "slowest": slowest_figures(clone)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="build the clone here and leave it (must not exist)")
    keep = parser.parse_args().keep
    profile = os.environ.get("PROFILE", "full")
    load_before = os.getloadavg()[0]
    if keep:
        stages, parts = cold_build(keep, profile)
    else:
        with tempfile.TemporaryDirectory() as folder:
            stages, parts = cold_build(Path(folder) / "repo", profile)
    total = sum(stages.values())
    figures = {f"{stage}_seconds": {"value": s, "unit": "s"} for stage, s in stages.items()}
    figures["zoo_within_deck-figures_seconds"] = {"value": parts["zoo"], "unit": "s",
                                                  "of": "the models the main deck reads, built side by side"}
    figures["cold_make_slides_seconds"] = {"value": total, "unit": "s", "target": f"<= {GOAL_SECONDS} s",
                                           "profile": profile}
    figures["slowest_figures_seconds"] = {"value": parts["slowest"], "unit": "s"}
    figures["load_average_before"] = {"value": load_before, "unit": "", "cpu_count": os.cpu_count()}
    print(f"cold make slides: {total:.0f} s (goal {GOAL_SECONDS} s)")
    write_results("cold", figures)


if __name__ == "__main__":
    main()
