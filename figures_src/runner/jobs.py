"""The runner side of making figures: start a worker per stale figure, `--jobs` at a time, and
install each success at once.

A worker's make function writes into a private staging folder; only when it succeeds are its
files renamed into talk/public/figures/<family>/ and its manifest entry (input and output hashes,
device, seconds, engine commit, time, where it ran, the command that regenerates it) written, both inside one
deferred-interrupt block. A figure that fails leaves its previous outputs and entry untouched; the
others still run. On a stop signal the workers' process groups are stopped (SIGTERM, then SIGKILL)
and the staging folder removed.

    failures = run_stale(stale, options, manifest, figures_dir)    # {figure id: error}
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from figures_src.runner.discover import FigureSpec
from figures_src.runner.forked import ForkedWorker, WorkerStartError
from figures_src.runner.paths import REPO_ROOT, STAGING_ROOT
from figures_src.runner.planning import models_to_read
from figures_src.runner.signals import INTERRUPTS, Interrupted
from figures_src.runner.staleness import Manifest, file_hash

WORKER_GRACE_SECONDS = 0.5     # after SIGTERM, before SIGKILL
POLL_SECONDS = 0.05


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


def regenerate_command(figure_id: str, profile: str) -> str:
    """The make line that remakes this figure as it was made: in its profile (full is make's default)."""
    in_profile = "" if profile == "full" else f" PROFILE={profile}"
    return f"make figures ONLY='{figure_id}'{in_profile} FORCE=1"


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


def job_for(spec: FigureSpec, options, staging: Path) -> dict:
    return {"figure_id": spec.figure_id, "script": str(spec.script), "make": spec.make,
            "params": spec.params_for(options.profile), "profile": options.profile,
            "device": options.device, "staging_dir": str(staging), "seed": 0,
            "result_file": str(staging.parent / f"{staging.name}.result.json"),
            "models_dir": str(options.models_dir), "models": spec.models, "outputs": spec.outputs,
            "must_read": models_to_read(spec, options), "threads": threads_per_worker(options.jobs)}


def threads_per_worker(jobs: int) -> int:
    """A worker's share of the cores (MECHINTERP_THREADS, or an even share, so `jobs` workers never
    oversubscribe them): its torch threads on a GPU; on the CPU a figure runs with one
    (worker.figure_threads, the one thread policy; scripts never set it)."""
    return int(os.environ.get("MECHINTERP_THREADS") or max(1, (os.cpu_count() or 1) // jobs))


def record(manifest: Manifest, spec: FigureSpec, inputs: dict, outputs: dict, result: dict, commit: str) -> None:
    manifest.figures[spec.figure_id] = {
        "script": os.path.relpath(spec.script.resolve(), REPO_ROOT), "make": spec.make,
        "models": spec.models, "inputs": inputs, "outputs": outputs,
        "params": spec.params_for(inputs["profile"]),   # to say which changed (staleness)
        "device": result["device"], "seconds": round(result["seconds"], 3), "engine_commit": commit,
        # where it ran: a cluster worker (cluster.py), or this machine's own process pool
        "ran_on": result.get("ran_on") or {"worker": "local", "host": socket.gethostname(),
                                           "device": result["device"]},
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": regenerate_command(spec.figure_id, inputs["profile"])}
    manifest.failed.pop(spec.figure_id, None)
    manifest.save()


def record_failure(manifest: Manifest, spec: FigureSpec, inputs: dict, error: str, frames: list[str]) -> None:
    """Note the inputs a figure's own code failed with, and where, so that staleness says so (not
    "run it again") until they change; its outputs and entry stay those of its last success. A
    failure without a frame of the figure's (a killed worker, the cluster's) may pass: not noted."""
    if not frames:
        return
    where = next((frame.split(" in ")[0] for frame in frames if not frame.startswith("raised in ")), "")
    manifest.failed[spec.figure_id] = {"input_hash": inputs["input_hash"],
                                       "error": f"{error.splitlines()[0][:200]}{' at ' + where if where else ''}"}
    manifest.save()


@dataclass
class Worker:
    """One figure being made in its own process (and process group), forked (runner.forked)."""
    spec: FigureSpec
    inputs: dict
    staging: Path
    job: dict
    process: ForkedWorker | None = field(default=None)
    start_error: str | None = None      # why its process could not be started

    def start(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        job_file = self.staging.parent / f"{self.staging.name}.job.json"
        job_file.write_text(json.dumps(self.job))
        try:
            self.process = ForkedWorker(job_file)
        except WorkerStartError as error:
            self.start_error = str(error)

    def finished(self) -> bool:
        return self.start_error is not None or self.process.poll() is not None

    def outcome(self) -> dict:
        if self.start_error:
            return {"error": self.start_error, "frames": []}
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
            process.signal_group(sig)
        deadline = time.monotonic() + WORKER_GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if p.poll() is None]
            time.sleep(0.01)
    for worker in workers:
        if worker.process:
            worker.process.close()
            worker.process.wait()


def finish(worker: Worker, manifest: Manifest, figures_dir: Path, commit: str, failures: dict) -> str:
    """Install and record a finished figure, or add its failure to `failures`; the line to print."""
    outcome = worker.outcome()
    if "result" not in outcome:
        failures[worker.spec.figure_id] = outcome["error"]
        record_failure(manifest, worker.spec, worker.inputs, outcome["error"], outcome["frames"])
        frames = "".join(f"\n    {line}" for line in outcome["frames"])
        return f"FAILED {worker.spec.figure_id}: {outcome['error']}{frames}"
    result = outcome["result"]
    record(manifest, worker.spec, worker.inputs, install_outputs(worker.spec, worker.staging, figures_dir),
           result, commit)
    return f"made   {worker.spec.figure_id} ({result['seconds']:.1f} s on {result['device']})" + \
        warning_lines(worker.spec.figure_id, result)


def warning_lines(figure_id: str, result: dict) -> str:
    """The lines said under a figure's "made" line for what its worker noticed in it (text that
    overprints other text: ctx.save); "" when nothing."""
    return "".join(f"\n  warning: {figure_id}: {warning}" for warning in result.get("warnings") or [])


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
    # a bar only on a terminal: in a log file its \r-redrawn line would run into the next line
    progress = tqdm(total=len(stale), desc="figures", unit="fig", file=sys.stderr, dynamic_ncols=True,
                    disable=not sys.stderr.isatty())
    try:
        while waiting or running:
            while waiting and len(running) < options.jobs:
                with INTERRUPTS.deferred():  # a worker is tracked from the moment it exists
                    running.append(waiting.pop(0))
                    running[-1].start()
            for worker in [w for w in running if w.finished()]:
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

