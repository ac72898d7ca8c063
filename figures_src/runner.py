"""The figure runner behind `make figures`: regenerate only the stale figures, safely.

    python -m figures_src.runner                      # every stale figure, full profile
    python -m figures_src.runner --only 'featvis/*'   # ids matching a pattern (glob or substring)
    python -m figures_src.runner --force --profile quick --device cpu --jobs 2
    python -m figures_src.runner --list               # what is stale and why; runs nothing

Each stale figure runs in a worker process: the script's make function writes into a private
staging folder, and only when it succeeds are its files renamed into talk/public/figures/ and its
manifest entry (input and output hashes, device, seconds, engine commit, time, the command that
regenerates it) written. A figure that raises leaves its previous outputs and entry untouched;
the others still run; the run exits non-zero naming every failed id. Ctrl-C stops cleanly.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

from figures_src.discover import FigureSpec, FigureSpecError, discover_figures
from figures_src.staleness import Manifest, figure_inputs, file_hash, stale_reason

REPO_ROOT = Path(__file__).resolve().parent.parent


def matches(figure_id: str, patterns: list[str]) -> bool:
    """True if no patterns, or the id matches a glob, equals one, or contains it."""
    if not patterns:
        return True
    return any(fnmatch.fnmatch(figure_id, p) or p in figure_id for p in patterns)


def to_jsonable(value):
    """Numbers from numpy or torch become plain floats, ints and lists."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and value != value:
        return None  # NaN has no JSON form
    return value


def load_script(script: Path):
    """Import a figure script by path as figures_src.<stem>."""
    spec = importlib.util.spec_from_file_location(f"figures_src.{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_figure(job: dict) -> dict:
    """Worker: run one figure's make function into its staging folder; return what it wrote."""
    os.environ["MECHINTERP_DEVICE"] = job["device"]
    from figures_src.context import FigureContext
    from figures_src.style import apply_style
    from mechinterp.device import pick_device, seed_everything

    apply_style()
    import torch
    torch.set_num_threads(job["threads"])  # workers share the cores instead of oversubscribing them
    device = pick_device(job["device"])
    seed_everything(job["seed"])
    make = getattr(load_script(Path(job["script"])), job["make"], None)
    if make is None:
        raise AttributeError(f"{job['script']} declares figure {job['figure_id']!r} with "
                             f"make={job['make']!r}, but defines no such function")
    staging = Path(job["staging_dir"])
    ctx = FigureContext(job["figure_id"], job["params"], job["profile"], device, staging,
                        Path(job["models_dir"]), job["seed"])
    started = time.perf_counter()
    numbers = make(ctx)
    seconds = time.perf_counter() - started
    if not isinstance(numbers, dict):
        raise TypeError(f"{job['script']}: {job['make']} must return a dict of the numbers it shows")
    ctx.path("json").write_text(json.dumps(to_jsonable(numbers), indent=2, allow_nan=False))
    missing = [s for s in job["outputs"] if not (staging / f"{ctx.name}.{s}").exists()]
    if missing:
        raise FileNotFoundError(f"{job['make']} did not write its declared outputs {missing} "
                                f"(use ctx.save(fig, suffix))")
    return {"seconds": seconds, "device": str(device), "files": [p.name for p in ctx.written]}


def engine_commit(repo_root: Path) -> str:
    """The git commit of the engine and scripts, marked +dirty when they have local changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--", "mechinterp", "figures_src", "models/zoo.yaml")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def regenerate_command(figure_id: str) -> str:
    return f"make figures ONLY='{figure_id}' FORCE=1"


def install_outputs(spec: FigureSpec, staging: Path, figures_dir: Path) -> dict[str, str]:
    """Rename the staged files into place (atomic per file); return {relative path: hash}."""
    target_dir = figures_dir / spec.family
    target_dir.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for staged in sorted(staging.iterdir()):
        target = target_dir / staged.name
        os.replace(staged, target)
        outputs[f"{spec.family}/{staged.name}"] = file_hash(target)
    return outputs


def plan(specs: dict[str, FigureSpec], options, manifest: Manifest, figures_dir: Path):
    """Split the selected figures into (stale: [(spec, inputs, reason)], errors: {id: message})."""
    stale, errors = [], {}
    for figure_id, spec in specs.items():
        if not matches(figure_id, options.only):
            continue
        try:
            inputs = figure_inputs(spec, options.profile, REPO_ROOT, options.models_dir)
        except FileNotFoundError as error:
            errors[figure_id] = str(error)
            continue
        reason = "forced" if options.force else stale_reason(spec, inputs, manifest, figures_dir)
        if reason:
            stale.append((spec, inputs, reason))
    return stale, errors


def job_for(spec: FigureSpec, options, staging: Path) -> dict:
    return {"figure_id": spec.figure_id, "script": str(spec.script), "make": spec.make,
            "params": spec.params_for(options.profile), "profile": options.profile,
            "device": options.device, "staging_dir": str(staging), "seed": 0,
            "models_dir": str(options.models_dir), "outputs": spec.outputs,
            "threads": int(os.environ.get("MECHINTERP_THREADS") or max(1, (os.cpu_count() or 1) // options.jobs))}


def record(manifest: Manifest, spec: FigureSpec, inputs: dict, outputs: dict, result: dict, commit: str) -> None:
    manifest.figures[spec.figure_id] = {
        "script": os.path.relpath(spec.script.resolve(), REPO_ROOT), "make": spec.make,
        "models": spec.models, "inputs": inputs, "outputs": outputs,
        "device": result["device"], "seconds": round(result["seconds"], 3), "engine_commit": commit,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": regenerate_command(spec.figure_id)}
    manifest.save()


def run_stale(stale, options, manifest: Manifest, figures_dir: Path) -> dict[str, str]:
    """Make every stale figure; install and record each success at once; return {id: error}."""
    from tqdm import tqdm
    failures: dict[str, str] = {}
    staging_root = REPO_ROOT / ".figure-staging" / f"run-{os.getpid()}"
    commit = engine_commit(REPO_ROOT)
    pool = ProcessPoolExecutor(max_workers=options.jobs, mp_context=get_context("spawn"))
    progress = tqdm(total=len(stale), desc="figures", unit="fig", file=sys.stderr, dynamic_ncols=True)
    try:
        futures = {}
        for spec, inputs, reason in stale:
            staging = staging_root / spec.figure_id.replace("/", "__")
            staging.mkdir(parents=True, exist_ok=True)
            futures[pool.submit(make_figure, job_for(spec, options, staging))] = (spec, inputs, staging)
        for future in as_completed(futures):
            spec, inputs, staging = futures[future]
            try:
                result = future.result()
            except Exception as error:  # the figure's own failure: report it, keep going
                failures[spec.figure_id] = "".join(traceback.format_exception_only(error)).strip()
                progress.write(f"FAILED {spec.figure_id}: {failures[spec.figure_id]}\n"
                               f"{_remote_traceback(error)}")
            else:
                record(manifest, spec, inputs, install_outputs(spec, staging, figures_dir), result, commit)
                progress.write(f"made   {spec.figure_id} ({result['seconds']:.1f} s on {result['device']})")
            progress.update(1)
    except KeyboardInterrupt:
        for worker in list(getattr(pool, "_processes", {}).values()):  # also when only we got SIGINT
            worker.terminate()
        raise
    finally:
        progress.close()
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging_root, ignore_errors=True)
    return failures


def _remote_traceback(error: BaseException) -> str:
    """The worker's traceback, which concurrent.futures attaches as the error's cause."""
    cause = getattr(error, "__cause__", None)
    text = str(cause) if cause is not None else ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-12:])


def build_stale_models(specs: dict[str, FigureSpec], selected: list[str], options) -> dict[str, str]:
    """Before figures run, let the zoo rebuild the stale models the selected figures read (its
    checkpoint, architecture source, entry or dataset changed); return {figure id: the zoo's
    message} for figures whose model could not be built. Torch is imported only to build."""
    from mechinterp.models.config import ZooError, read_zoo
    from mechinterp.models.inputs import stale_models
    config = options.models_dir / "zoo.yaml"
    readers = {figure_id: specs[figure_id].models for figure_id in selected}
    try:
        stale = stale_models(sorted({m for names in readers.values() for m in names}),
                             read_zoo(config), options.models_dir) if config.is_file() else {}
        if not stale:
            return {}
        from mechinterp.models.zoo import train_zoo_models
        failures = train_zoo_models(config, options.models_dir, sorted(stale), options.device)
    except ZooError as error:
        failures = {name: f"zoo: {error}" for names in readers.values() for name in names}
    return {figure_id: failures[name] for figure_id, names in readers.items()
            for name in names if name in failures}


@contextlib.contextmanager
def exclusive_run(figures_dir: Path):
    """One runner per figures folder: a second would overwrite the first's manifest entries."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    with open(figures_dir / ".runner.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"error: another `make figures` is writing to {figures_dir}; "
                             "wait for it to finish (or stop it), then run again") from None
        yield


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="make figures", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="only ids matching this glob or substring (repeatable)")
    parser.add_argument("--force", action="store_true", help="remake even if up to date")
    parser.add_argument("--device", default=os.environ.get("MECHINTERP_DEVICE", "auto"),
                        choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    parser.add_argument("--jobs", type=int, default=1, help="figures made in parallel")
    parser.add_argument("--list", action="store_true", help="list stale figures and why; make none")
    parser.add_argument("--scripts-dir", type=Path, default=REPO_ROOT / "figures_src")
    parser.add_argument("--figures-dir", type=Path, default=REPO_ROOT / "talk" / "public" / "figures")
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    options = parser.parse_args(argv)
    options.only = [p for pattern in options.only for p in pattern.split(",") if p]
    return options


def main(argv=None) -> int:
    options = parse_args(argv)
    try:
        specs = discover_figures(options.scripts_dir, REPO_ROOT)
        manifest = Manifest.load(options.figures_dir / "manifest.json")
    except (FigureSpecError, ValueError, SyntaxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    selected = [i for i in specs if matches(i, options.only)]
    if options.only and not selected:
        print(f"error: no figure id matches {options.only}; known ids: {', '.join(sorted(specs))}",
              file=sys.stderr)
        return 2
    model_failures = {} if options.list else build_stale_models(specs, selected, options)
    stale, unavailable = plan(specs, options, manifest, options.figures_dir)
    stale = [item for item in stale if item[0].figure_id not in model_failures]
    unavailable.update(model_failures)
    failures = dict(unavailable)
    if options.list:
        for spec, _, reason in stale:
            print(f"stale  {spec.figure_id}: {reason}")
        for figure_id, message in failures.items():
            print(f"cannot {figure_id}: {message}")
        print(f"{len(stale)} stale, {len(selected) - len(stale) - len(failures)} up to date")
        return 0
    try:
        if stale:
            with exclusive_run(options.figures_dir):
                manifest = Manifest.load(options.figures_dir / "manifest.json")  # as the lock found it
                failures.update(run_stale(stale, options, manifest, options.figures_dir))
    except KeyboardInterrupt:
        print("\ninterrupted: figures made so far are saved and recorded; none is half-written. "
              "Run `make figures` again to make the rest.", file=sys.stderr)
        return 130
    up_to_date = len(selected) - len(stale) - len(unavailable)
    made = len(stale) - len(set(failures) - set(unavailable))
    print(f"figures: {made} made, {up_to_date} up to date, {len(failures)} failed")
    for figure_id, message in failures.items():
        print(f"  failed {figure_id}: {message}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
