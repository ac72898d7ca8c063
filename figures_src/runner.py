"""The figure runner behind `make figures`: regenerate only the stale figures, safely.

    python -m figures_src.runner                      # every stale figure, full profile
    python -m figures_src.runner --only 'featvis/*'   # ids matching a pattern (glob or substring)
    python -m figures_src.runner --ids zoo/accuracy,featvis/tuning   # exactly these ids
    python -m figures_src.runner --force --profile quick --device cpu --jobs 2
    python -m figures_src.runner --list               # what is stale and why; runs nothing

    from figures_src import runner                    # what decktools.figures calls for one deck
    runner.run(runner.parse_args(["--profile", "quick"]), figure_ids=["zoo/accuracy"])

Each stale figure runs in a worker process (`--worker JOB`): the script's make function writes
into a private staging folder, and only when it succeeds are its files renamed into
talk/public/figures/ and its manifest entry (input and output hashes, device, seconds, engine
commit, time, the command that regenerates it) written. A figure that raises leaves its previous
outputs and entry untouched and is reported with the frames of the user's own files; the others
still run; the run exits non-zero naming every failed id.

Ctrl-C: workers run in a process group of their own, so a terminal's SIGINT (or one sent to the
runner alone, or SIGTERM/SIGHUP) reaches only the runner. Its first stop signal raises
KeyboardInterrupt (deferred while a figure is being installed, so no figure is half-recorded);
later ones, such as the copy make forwards, are ignored so the clean-up finishes. The runner
kills its workers, removes its staging folder, releases the lock and prints one line naming what
was not finished. A worker whose runner dies exits when its stdin pipe closes. The lock file
(talk/public/figures/.runner.lock, an flock) holds the runner's pid; a lock whose recorded process
is dead is taken over with a line saying so.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import fcntl
import fnmatch
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from figures_src.discover import NOT_FIGURE_SCRIPTS, FigureSpec, FigureSpecError, discover_figures
from figures_src.staleness import Manifest, figure_inputs, file_hash, stale_reason

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGING_ROOT = REPO_ROOT / ".figure-staging"
LOCK_NAME = ".runner.lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WORKER_GRACE_SECONDS = 0.5     # after SIGTERM, before SIGKILL
POLL_SECONDS = 0.05


class Interrupts:
    """Stop signals as one KeyboardInterrupt: the first raises it, unless inside `deferred()`,
    where it waits for the block's end; later ones are ignored, so the clean-up they would cut
    short (a terminal's Ctrl-C and the copy make forwards both arrive) always finishes."""

    def __init__(self):
        self.received: int | None = None
        self.raised = False
        self.depth = 0

    def handle(self, signum, frame) -> None:
        self.received = self.received or signum
        if self.depth == 0:
            self._raise()

    def _raise(self) -> None:
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.depth == 0 and self.received:
            self._raise()


INTERRUPTS = Interrupts()


@contextlib.contextmanager
def stop_signals_handled():
    """Route SIGINT, SIGTERM and SIGHUP through INTERRUPTS (re-entrant). After an interrupt the
    handler stays, so a late forwarded signal cannot print a traceback on the way out."""
    if signal.getsignal(signal.SIGINT) == INTERRUPTS.handle:
        yield
        return
    previous = {number: signal.signal(number, INTERRUPTS.handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        if not INTERRUPTS.received:
            for number, handler in previous.items():
                signal.signal(number, handler)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal: which figures were running, waiting, and already made."""

    def __init__(self, unfinished: list[str], not_started: int, made: int):
        super().__init__()
        self.unfinished, self.not_started, self.made = unfinished, not_started, made

    def line(self) -> str:
        if len(self.unfinished) == 1:
            text = f"figure {self.unfinished[0]} was not finished; its previous outputs are kept"
        elif self.unfinished:
            text = f"figures {', '.join(self.unfinished)} were not finished; their previous outputs are kept"
        else:
            text = "no figure was running; nothing was changed"
        if self.not_started:
            text += f"; {self.not_started} not started"
        if self.made:
            text += f"; {self.made} made before the interrupt are saved"
        return f"interrupted: {text}"


def matches(figure_id: str, patterns: list[str]) -> bool:
    """True if no patterns, or the id matches a glob, equals one, or contains it."""
    if not patterns:
        return True
    return any(fnmatch.fnmatch(figure_id, p) or p in figure_id for p in patterns)


def did_you_mean(name: str, known) -> str:
    """' (did you mean a, b?)' with the closest known names, or ''."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


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


def _not_user_dirs() -> list[Path]:
    """Where code that is not the user's lives: the stdlib, site-packages, the engine."""
    paths = sysconfig.get_paths()
    found = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found |= {Path(p).resolve() for p in sys.path if "site-packages" in p or "dist-packages" in p}
    return sorted(found | {REPO_ROOT / "mechinterp"})


def is_user_file(filename: str) -> bool:
    """A frame worth showing: the figure script or another file of the user's own, not the
    engine, the stdlib, site-packages or the runner's own machinery."""
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    if path.parent == REPO_ROOT / "figures_src" and path.stem in NOT_FIGURE_SCRIPTS:
        return False
    return not any(path.is_relative_to(folder) for folder in _not_user_dirs())


def failure_report(error: BaseException) -> dict:
    """{"error": the exception in one line, "frames": ["file:line in function: code", ...]} with
    only the user's own frames, and the place it was raised when that lies elsewhere."""
    message = traceback.format_exception_only(error)[-1].strip()
    frames = [f for f in traceback.extract_tb(error.__traceback__)]
    shown = [f"{f.filename}:{f.lineno} in {f.name}: {(f.line or '').strip()}"
             for f in frames if is_user_file(f.filename)]
    if isinstance(error, SyntaxError) and error.filename:
        shown.append(f"{error.filename}:{error.lineno}: {(error.text or '').strip()}")
    elif frames and not is_user_file(frames[-1].filename):
        last = frames[-1]
        shown.append(f"raised in {last.filename}:{last.lineno} in {last.name}")
    return {"error": message, "frames": shown}


def _exit_when_runner_dies() -> None:
    """The runner holds our stdin open; EOF means it is gone, so no orphan works on. (os.read on
    the raw descriptor: a thread blocked in sys.stdin would hold its lock at interpreter exit.)"""
    while os.read(0, 1 << 16):
        pass
    os._exit(3)


def worker_main(job_file: Path) -> int:
    """`--worker JOB`: make one figure; write {"result": ...} or a failure report to the job's
    result file (exit 0 or 1)."""
    threading.Thread(target=_exit_when_runner_dies, daemon=True).start()
    job = json.loads(job_file.read_text())
    try:
        outcome = {"result": make_figure(job)}
    except Exception as error:  # the figure's own failure: the runner reports it
        outcome = failure_report(error)
    Path(job["result_file"]).write_text(json.dumps(outcome))
    return 0 if "result" in outcome else 1


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


def profile_change_line(stale, manifest: Manifest, profile: str) -> str | None:
    """One line for a profile switch, instead of the same reason on every figure."""
    before = Counter(manifest.figures[spec.figure_id].get("inputs", {}).get("profile")
                     for spec, _, _ in stale if spec.figure_id in manifest.figures)
    before.pop(profile, None)
    if not before:
        return None
    return (f"figures: profile changed from {' and '.join(sorted(map(str, before)))} to {profile}: "
            f"{sum(before.values())} figures stale")


def job_for(spec: FigureSpec, options, staging: Path) -> dict:
    return {"figure_id": spec.figure_id, "script": str(spec.script), "make": spec.make,
            "params": spec.params_for(options.profile), "profile": options.profile,
            "device": options.device, "staging_dir": str(staging), "seed": 0,
            "result_file": str(staging.parent / f"{staging.name}.result.json"),
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


@dataclass
class Worker:
    """One figure being made in its own process (and process group)."""
    spec: FigureSpec
    inputs: dict
    staging: Path
    job: dict
    process: subprocess.Popen | None = field(default=None)

    def start(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        job_file = self.staging.parent / f"{self.staging.name}.job.json"
        job_file.write_text(json.dumps(self.job))
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        # process_group=0: a terminal's Ctrl-C reaches only the runner, which stops us itself
        self.process = subprocess.Popen([sys.executable, "-m", "figures_src.runner", "--worker", str(job_file)],
                                        stdin=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=path),
                                        process_group=0)

    def outcome(self) -> dict:
        result_file = Path(self.job["result_file"])
        if result_file.exists():
            return json.loads(result_file.read_text())
        return {"error": f"the worker process exited with code {self.process.returncode} "
                         "without a result (killed, or out of memory?)", "frames": []}


def stop_workers(workers) -> None:
    """SIGTERM each worker's process group, SIGKILL what is left after a grace period, reap all."""
    alive = [w.process for w in workers if w.process and w.process.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + WORKER_GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if p.poll() is None]
            time.sleep(0.01)
    for worker in workers:
        if worker.process:
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
            worker.process.wait()


def finish(worker: Worker, manifest: Manifest, figures_dir: Path, commit: str, failures: dict) -> str:
    """Install and record a finished figure, or add its failure to `failures`; the line to print."""
    outcome = worker.outcome()
    if "result" not in outcome:
        failures[worker.spec.figure_id] = outcome["error"]
        frames = "".join(f"\n    {line}" for line in outcome["frames"])
        return f"FAILED {worker.spec.figure_id}: {outcome['error']}{frames}"
    result = outcome["result"]
    record(manifest, worker.spec, worker.inputs, install_outputs(worker.spec, worker.staging, figures_dir),
           result, commit)
    return f"made   {worker.spec.figure_id} ({result['seconds']:.1f} s on {result['device']})"


def run_stale(stale, options, manifest: Manifest, figures_dir: Path) -> dict[str, str]:
    """Make every stale figure, `options.jobs` at a time; install and record each success at
    once; return {id: error}. Raises Interrupted when a stop signal arrives."""
    from tqdm import tqdm
    failures: dict[str, str] = {}
    staging_root = STAGING_ROOT / f"run-{os.getpid()}"
    commit = engine_commit(REPO_ROOT)
    waiting = [Worker(spec, inputs, staging_root / spec.figure_id.replace("/", "__"), {})
               for spec, inputs, _ in stale]
    for worker in waiting:
        worker.job = job_for(worker.spec, options, worker.staging)
    running: list[Worker] = []
    made = 0
    progress = tqdm(total=len(stale), desc="figures", unit="fig", file=sys.stderr, dynamic_ncols=True)
    try:
        while waiting or running:
            while waiting and len(running) < options.jobs:
                with INTERRUPTS.deferred():  # a worker is tracked from the moment it exists
                    running.append(waiting.pop(0))
                    running[-1].start()
            for worker in [w for w in running if w.process.poll() is not None]:
                with INTERRUPTS.deferred():  # outputs and manifest entry go in together
                    line = finish(worker, manifest, figures_dir, commit, failures)
                    running.remove(worker)
                made += worker.spec.figure_id not in failures
                progress.write(line, file=sys.stderr if line.startswith("FAILED") else sys.stdout)
                progress.update(1)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        stop_workers(running)
        raise Interrupted([w.spec.figure_id for w in running], len(waiting), made) from None
    finally:
        progress.close()
        stop_workers(running)
        shutil.rmtree(staging_root, ignore_errors=True)
    return failures


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    return False


def _take_over(path: Path, holder: int) -> None:
    print(f"figures: the lock {path} was left by process {holder}, which is no longer running; "
          "taking it over", file=sys.stderr)
    shutil.rmtree(STAGING_ROOT / f"run-{holder}", ignore_errors=True)


def acquire_lock(figures_dir: Path) -> int:
    """An flock on figures_dir/.runner.lock with our pid written in it; the open descriptor.
    A lock held for a dead process (something it started kept the descriptor) is replaced by a
    fresh file; a live holder is refused by name."""
    path = figures_dir / LOCK_NAME
    for _ in range(3):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _recorded_pid(fd)
            if holder is None or _pid_alive(holder):
                os.close(fd)
                who = f" (process {holder})" if holder else ""
                raise SystemExit(f"error: another `make figures` is writing to {figures_dir}{who}; "
                                 "wait for it to finish (or stop it), then run again") from None
            if _same_file(fd, path):
                path.unlink()
            os.close(fd)
            _take_over(path, holder)
            continue
        if not _same_file(fd, path):  # replaced by a runner taking over: lock the new file
            os.close(fd)
            continue
        holder = _recorded_pid(fd)
        if holder and holder != os.getpid() and not _pid_alive(holder):
            _take_over(path, holder)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    raise SystemExit(f"error: could not take the lock {path}; run again")


def release_lock(fd: int) -> None:
    """Clear our pid (so no later run mistakes us for a dead holder) and unlock."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


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
    fd = None
    try:
        with INTERRUPTS.deferred():
            fd = acquire_lock(figures_dir)
        yield
    finally:
        if fd is not None:
            release_lock(fd)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="make figures", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="only ids matching this glob or substring (repeatable)")
    parser.add_argument("--ids", default="", help="exactly these ids, comma-separated")
    parser.add_argument("--force", action="store_true", help="remake even if up to date")
    parser.add_argument("--device", default=os.environ.get("MECHINTERP_DEVICE", "auto"),
                        choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    parser.add_argument("--jobs", type=int, default=1, help="figures made in parallel")
    parser.add_argument("--list", action="store_true", help="list stale figures and why; make none")
    parser.add_argument("--scripts-dir", type=Path, default=REPO_ROOT / "figures_src")
    parser.add_argument("--figures-dir", type=Path, default=REPO_ROOT / "talk" / "public" / "figures")
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    options.only = [p for pattern in options.only for p in pattern.split(",") if p]
    options.jobs = max(1, options.jobs)
    return options


def select(specs: dict[str, FigureSpec], options, figure_ids) -> list[str] | str:
    """The ids to consider, or an error message: figure_ids (None: all) filtered by --only."""
    if figure_ids is not None:
        unknown = [i for i in figure_ids if i not in specs]
        if unknown:
            return "; ".join(f"no figure script declares {i!r}{did_you_mean(i, specs)}" for i in unknown)
    selected = [i for i in (specs if figure_ids is None else dict.fromkeys(figure_ids)) if matches(i, options.only)]
    if options.only and not selected:
        return f"no figure id matches {options.only}; known ids: {', '.join(sorted(specs))}"
    return selected


def list_stale(stale, failures: dict, selected: list[str]) -> int:
    for spec, _, reason in stale:
        print(f"stale  {spec.figure_id}: {reason}")
    for figure_id, message in failures.items():
        print(f"cannot {figure_id}: {message}")
    print(f"{len(stale)} stale, {len(selected) - len(stale) - len(failures)} up to date")
    return 0


def _run(options, figure_ids) -> int:
    try:
        specs = discover_figures(options.scripts_dir, REPO_ROOT)
        manifest = Manifest.load(options.figures_dir / "manifest.json")
    except (FigureSpecError, ValueError, SyntaxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    selected = select(specs, options, figure_ids)
    if isinstance(selected, str):
        print(f"error: {selected}", file=sys.stderr)
        return 2
    model_failures = {} if options.list else build_stale_models(specs, selected, options)
    stale, unavailable = plan({i: specs[i] for i in selected}, options, manifest, options.figures_dir)
    stale = [item for item in stale if item[0].figure_id not in model_failures]
    unavailable.update(model_failures)
    if line := profile_change_line(stale, manifest, options.profile):
        print(line)
    failures = dict(unavailable)
    if options.list:
        return list_stale(stale, failures, selected)
    if stale:
        with exclusive_run(options.figures_dir):
            manifest = Manifest.load(options.figures_dir / "manifest.json")  # as the lock found it
            failures.update(run_stale(stale, options, manifest, options.figures_dir))
    up_to_date = len(selected) - len(stale) - len(unavailable)
    made = len(stale) - len(set(failures) - set(unavailable))
    print(f"figures: {made} made, {up_to_date} up to date, {len(failures)} failed")
    for figure_id, message in failures.items():
        print(f"  failed {figure_id}: {message}", file=sys.stderr)
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
    if options.worker:  # keeps Python's own signal handling: SIGTERM from the runner ends it
        return worker_main(options.worker)
    return run(options, [i for i in options.ids.split(",") if i] if options.ids else None)


if __name__ == "__main__":
    sys.exit(main())
