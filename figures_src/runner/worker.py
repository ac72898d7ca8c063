"""The worker side: one figure made in its own process, forked by the runner (runner.forked).

The runner writes a job file (script, make function, params, device, seed, threads, staging
folder) and starts a worker for it. The worker sets the one thread policy (figure_threads: one
torch thread on the CPU, the job's share of the cores on a GPU), the device, the seed and the deck
style, imports the script, calls its make function with a FigureContext that writes into the
staging folder (and fails the figure when it never read a model its entry declares), and writes
{"result": ...} or a failure report with only the user's own frames to the job's result file (an
import that fails, in the script or in what it imports, is named with its file:line and what to do).
A worker whose runner dies exits when its pipe from the runner closes (runner.forked).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import sysconfig
import time
import traceback
from pathlib import Path

from figures_src.runner.paths import REPO_ROOT, RUNNER_DIR
from mechinterp.models.failures import raised_at, shown_path


def to_jsonable(value, where: str = "the numbers"):
    """Numbers from numpy or torch become plain floats, ints and lists; NaN and infinity become
    null (JSON has no form for them; a slide quoting one is refused by the deck's check). A value
    JSON cannot hold (a set, an object) is a TypeError naming where it is in the returned dict."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist(), where)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which a figure's JSON cannot hold: "
                    "return a list, a dict, a number or a string there")


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
    from figures_src.runner.context import FigureContext
    from figures_src.runner.style import apply_style
    from mechinterp.device import keep_freed_memory, pick_device, seed_everything

    apply_style()
    import torch
    keep_freed_memory()
    device = pick_device(job["device"])
    torch.set_num_threads(figure_threads(device, job["threads"]))
    seed_everything(job["seed"])
    make = getattr(load_script(Path(job["script"])), job["make"], None)
    if make is None:
        raise AttributeError(f"{job['script']} declares figure {job['figure_id']!r} with "
                             f"make={job['make']!r}, but defines no such function")
    staging = Path(job["staging_dir"])
    ctx = FigureContext(job["figure_id"], job["params"], job["profile"], device, staging,
                        Path(job["models_dir"]), job["seed"], tuple(job["models"]), job["script"])
    started = time.perf_counter()
    numbers = make(ctx)
    seconds = time.perf_counter() - started
    ctx.check_all_read(job.get("must_read", job["models"]))   # a declared model it never read: not "made"
    if not isinstance(numbers, dict):
        raise TypeError(f"{job['script']}: {job['make']} must return a dict of the numbers it shows")
    numbers = to_jsonable(numbers, f"{job['make']}'s numbers")
    ctx.path("json").write_text(json.dumps(numbers, indent=2, allow_nan=False))
    missing = [s for s in job["outputs"] if not (staging / f"{ctx.name}.{s}").exists()]
    if missing:
        raise FileNotFoundError(f"{job['make']} did not write its declared outputs {missing} "
                                f"(use ctx.save(fig, suffix))")
    return {"seconds": seconds, "device": str(device), "files": [p.name for p in ctx.written],
            "warnings": ctx.warnings}


CPU_FIGURE_THREADS = 1


def figure_threads(device, share: int) -> int:
    """The one thread policy of figures. On the CPU one torch intra-op thread, as the zoo trains:
    a reduction split over threads adds in another order, so a figure's numbers would depend on
    JOBS, MECHINTERP_THREADS or the cluster worker; with one they are the same byte for byte. On a
    GPU the CPU only feeds it, so the worker's `share` of the cores (jobs.threads_per_worker)."""
    return CPU_FIGURE_THREADS if device.type == "cpu" else share


def _not_user_dirs() -> list[Path]:
    """Where code that is not the user's lives: the stdlib, site-packages, the engine."""
    paths = sysconfig.get_paths()
    found = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found |= {Path(p).resolve() for p in sys.path if "site-packages" in p or "dist-packages" in p}
    return sorted(found | {REPO_ROOT / "mechinterp", RUNNER_DIR})


def is_user_file(filename: str) -> bool:
    """A frame worth showing: the figure script or another file of the user's own, not the
    engine, the stdlib, site-packages or the runner's own machinery."""
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    return not any(path.is_relative_to(folder) for folder in _not_user_dirs())


def failure_report(error: BaseException, named=shown_path) -> dict:
    """{"error": the exception in one line, "frames": ["file:line in function: code", ...]} with
    only the user's own frames, and the place it was raised when that lies elsewhere; `named`
    says a file's path (a cluster worker names its shipped copies by the runner's paths)."""
    message = traceback.format_exception_only(error)[-1].strip()
    if isinstance(error, ImportError):
        message += import_advice(error)
    frames = [f for f in traceback.extract_tb(error.__traceback__)]
    shown = [f"{named(f.filename)}:{f.lineno} in {f.name}: {(f.line or '').strip()}"
             for f in frames if is_user_file(f.filename)]
    if isinstance(error, SyntaxError) and error.filename:
        shown.append(f"{named(error.filename)}:{error.lineno}: {(error.text or '').strip()}")
    elif frames and not is_user_file(frames[-1].filename):
        last = frames[-1]
        shown.append(f"raised in {named(last.filename)}:{last.lineno} in {last.name}")
    return {"error": message, "frames": shown}


def import_advice(error: ImportError) -> str:
    """" (at figures_src/mylab.py:3); install ...": the line of the import that failed (the
    script's own, or a module of the user's it imports) and what to do about it."""
    if isinstance(error, ModuleNotFoundError):
        todo = (f"install the package that provides {error.name!r} into the venv "
                f"(`{shown_path(sys.executable)} -m pip install <package>`), or fix the import")
    else:
        todo = f"fix the import, or install a version of {error.name or 'that package'!r} that has it"
    return f"{raised_at(error)}; {todo}"


def worker_main(job_file: Path) -> int:
    """Make the job's figure; write {"result": ...} or a failure report to the job's result file
    (exit 0 or 1). Runs in a worker process forked by the runner (runner.forked)."""
    job = json.loads(job_file.read_text())
    try:
        outcome = {"result": make_figure(job)}
    except Exception as error:  # the figure's own failure: the runner reports it
        outcome = failure_report(error)
    Path(job["result_file"]).write_text(json.dumps(outcome))
    return 0 if "result" in outcome else 1
