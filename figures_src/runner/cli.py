"""The figure runner's command line, behind `make figures`: regenerate only the stale figures, safely.

    python -m figures_src.runner                      # every stale figure, full profile
    python -m figures_src.runner --only 'featvis/*'   # ids matching a pattern (glob or substring)
    python -m figures_src.runner --ids zoo/accuracy,featvis/tuning   # exactly these ids
    python -m figures_src.runner --force --profile quick --device cpu --jobs 2
    python -m figures_src.runner --list               # what is stale and why; runs nothing
    python -m figures_src.runner --cluster tcp://host:8786   # made on a Dask cluster (cluster.py)

    from figures_src import runner                    # what decktools.figures calls for one deck
    runner.run(runner.parse_args(["--profile", "quick"]), figure_ids=["zoo/accuracy"])

A run discovers the declared figures (discover.py), selects and plans the stale ones
(planning.py), removes the outputs of figures no script declares any more (prune.py), takes
the figures folder's lock (lock.py) and makes them in workers, each a process of its own forked
from one that imported torch once (jobs.py, forked.py, worker.py); the run exits non-zero naming
every failed id. Stop signals end it with one `interrupted:` line (signals.py).

A figure script that does not parse cannot say which figures it declares. A run of every figure
(`make figures`, with or without --only) then stops before anything is made, with one `error:`
line per such script naming its file:line; some of the figures it asked for are unknown. A run of
named figures (--ids, and `make slides`, which names the figures its deck shows) goes on when the
other scripts declare every one of them, saying so in a `warning:` line: a typo in one lab's
script does not stop another deck's build. When some named id is declared by none of the others,
the broken script may be the one that declares it, and the run stops with the `error:` line.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from figures_src.runner.discover import FigureSpecError, UnreadableScriptError, discover_figures
from figures_src.runner.jobs import run_stale
from figures_src.runner.lock import exclusive_run
from figures_src.runner.paths import FIGURES_DIR, MODELS_DIR, REPO_ROOT, SCRIPTS_DIR
from figures_src.runner.planning import (build_stale_models, longest_first, plan, profile_change_line, select,
                                        unknown_models, unread_zoo_problems)
from figures_src.runner.prune import prune_undeclared
from figures_src.runner.signals import Interrupted, stop_signals_handled
from figures_src.runner.staleness import Manifest


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="make figures", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="only ids matching this glob or substring (repeatable)")
    parser.add_argument("--ids", default="", help="exactly these ids, comma-separated")
    parser.add_argument("--force", action="store_true", help="remake even if up to date")
    parser.add_argument("--device", default=os.environ.get("MECHINTERP_DEVICE", "auto"),
                        choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--profile", default="full", choices=["quick", "full", "gpu"],
                        help="gpu: full, plus the figures of models only a GPU trains (DEVICE=cuda)")
    parser.add_argument("--jobs", type=int, default=1, help="figures made in parallel")
    parser.add_argument("--list", action="store_true", help="list stale figures and why; make none")
    parser.add_argument("--cluster", default="", metavar="ADDRESS",
                        help="make the stale figures on a Dask cluster: tcp://host:8786, or slurm")
    parser.add_argument("--cluster-config", type=Path, default=REPO_ROOT / "cluster.yaml",
                        help="the Slurm settings for --cluster slurm (see README)")
    parser.add_argument("--scripts-dir", type=Path, default=SCRIPTS_DIR)
    parser.add_argument("--figures-dir", type=Path, default=FIGURES_DIR)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    options = parser.parse_args(argv)
    # ONLY='a/x,b/y' or ONLY='a/x b/y': a figure id holds neither a comma nor a space
    options.only = [p for pattern in options.only for p in re.split(r"[,\s]+", pattern) if p]
    if options.jobs < 1:
        parser.error(f"--jobs {options.jobs}: give how many figures to make at once, 1 or more (make: JOBS=2)")
    return options


def list_stale(stale, failures: dict, selected: list[str]) -> int:
    for spec, _, reason in stale:
        print(f"stale  {spec.figure_id}: {reason}")
    for figure_id, message in failures.items():
        print(f"cannot {figure_id}: {message}")
    print(f"{len(stale)} stale, {len(selected) - len(stale) - len(failures)} up to date")
    return 0


def execute(stale, options, manifest: Manifest) -> dict[str, str]:
    """Only the execution differs with --cluster: a Dask cluster instead of local processes."""
    if options.cluster:
        from figures_src.runner.cluster import run_stale_on_cluster  # dask only when asked for
        return run_stale_on_cluster(stale, options, manifest, options.figures_dir)
    return run_stale(stale, options, manifest, options.figures_dir)


def readable_specs(options, figure_ids) -> dict | None:
    """The declared figures, or None after saying why they cannot be used; a script that does
    not parse stops only a run that may need its figures (module docstring)."""
    try:
        return discover_figures(options.scripts_dir, REPO_ROOT)
    except UnreadableScriptError as error:
        unknown = None if figure_ids is None else sorted(set(figure_ids) - set(error.found))
        if unknown == []:
            for problem in error.problems:
                print(f"warning: {problem}; the {len(figure_ids)} figures asked for are declared by "
                      "other scripts, so the run goes on without it", file=sys.stderr)
            return error.found
        needed = f"; it may declare {', '.join(unknown)}" if unknown else "; no figure was made"
        for problem in error.problems:
            print(f"error: {problem}{needed}", file=sys.stderr)
    except (FigureSpecError, ValueError, SyntaxError) as error:
        print(f"error: {error}", file=sys.stderr)
    return None


def _run(options, figure_ids) -> int:
    specs = readable_specs(options, figure_ids)
    if specs is None:
        return 2
    try:
        if line := prune_undeclared(options):   # outputs of figures the speaker removed
            print(line)
        manifest = Manifest.load(options.figures_dir / "manifest.json")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    selected = select(specs, options, figure_ids)
    if isinstance(selected, str):
        print(f"error: {selected}", file=sys.stderr)
        return 2
    for note in unread_zoo_problems(specs, selected, options):
        print(note, file=sys.stderr)
    if problem := unusable_device(options):
        print(f"error: {problem}; no figure was made", file=sys.stderr)
        return 2
    stale, unavailable = planned(specs, selected, options, manifest)
    if line := profile_change_line(stale, manifest, options.profile):
        print(line)
    if options.list:
        return list_stale(stale, unavailable, selected)
    for line in remake_reasons(stale, manifest):
        print(line)
    for figure_id, message in unavailable.items():   # before any figure starts
        print(f"cannot {figure_id}: {message}", file=sys.stderr)
    failures = dict(unavailable)
    if stale:
        with exclusive_run(options.figures_dir):
            manifest = Manifest.load(options.figures_dir / "manifest.json")  # as the lock found it
            failures.update(execute(longest_first(stale, manifest), options, manifest))
    return summary(selected, stale, unavailable, failures)


def unusable_device(options) -> str | None:
    """Why this machine cannot compute on the device asked for by name (cuda, mps), said once
    before any model or figure starts rather than by each; None for auto and cpu, a listing, or a
    cluster (its workers' devices count)."""
    if options.device not in ("cuda", "mps") or options.list or options.cluster:
        return None
    from mechinterp.device import pick_device     # torch: only when a device is named
    try:
        pick_device(options.device)
    except RuntimeError as error:
        return str(error)
    return None


def remake_reasons(stale, manifest: Manifest) -> list[str]:
    """Why each figure made before is made again, as --list says it (a profile switch alone is
    the one line before; a figure never made needs no reason)."""
    return [f"stale  {spec.figure_id}: {reason}" for spec, _, reason in stale
            if spec.figure_id in manifest.figures and not reason.startswith("profile changed from ")]


def planned(specs, selected: list[str], options, manifest: Manifest):
    """(stale [(spec, inputs, reason)], {figure id: why it cannot be made}) in selected's order. A
    declared model the zoo lacks is found first, when the zoo is read; then the stale models
    the other figures read are built (not for --list), then their staleness is decided."""
    unavailable = unknown_models(specs, selected, options.models_dir)
    wanted = [i for i in selected if i not in unavailable]
    unavailable.update({} if options.list else build_stale_models(specs, wanted, options))
    stale, errors = plan({i: specs[i] for i in wanted}, options, manifest, options.figures_dir)
    unavailable = {**errors, **unavailable}   # a model that failed to build says more than its absence
    return ([item for item in stale if item[0].figure_id not in unavailable],
            {i: unavailable[i] for i in selected if i in unavailable})


def summary(selected: list[str], stale, unavailable: dict, failures: dict) -> int:
    """The closing count and the failed ids (each failure was shown whole as it happened, as a
    `cannot`, `FAILED` or zoo block above); the exit status."""
    up_to_date = len(selected) - len(stale) - len(unavailable)
    made = len(stale) - len(set(failures) - set(unavailable))
    print(f"figures: {made} made, {up_to_date} up to date, {len(failures)} failed")
    if failures:
        print(f"  failed (see above): {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


def run(options, figure_ids=None) -> int:
    """Make the stale figures among figure_ids (None: every declared figure), filtered by
    options.only; the exit status. Stop signals end it cleanly with one `interrupted:` line."""
    with stop_signals_handled():
        try:
            return _run(options, None if figure_ids is None else list(figure_ids))
        except Interrupted as stop:
            print(f"\n{stop.line()}", file=sys.stderr)
        except KeyboardInterrupt:
            print("\ninterrupted: before any figure was started; every figure and the manifest are as they were", file=sys.stderr)
        return 130


def main(argv=None) -> int:
    options = parse_args(argv)
    return run(options, [i for i in options.ids.split(",") if i] if options.ids else None)

