"""The worker side of the cluster: what a Dask worker runs for the runner (cluster.py).

A worker imports this module from the code folder CodePlugin unpacked (codeship.py), so it runs the
runner's code, never a copy of the project it may have elsewhere. Each task first checks that
the code this worker process holds is the runner's: Python cannot unload modules, so a worker that
imported another commit's code for an earlier run refuses, naming both commits. Checkpoints
arrive by content hash (store_blobs, only those missing_blobs says it lacks) into
<cache>/blobs/<sha256>; a figure's models folder is made of links to them. A figure is made by the
same make_figure as a local worker, into a task folder on the worker; what comes back is its result,
its files as bytes and where it ran. Nothing is written into the runner's folders from here.

    client.run(missing_blobs, hashes)                 # {worker: [hashes it lacks]}
    client.submit(make_figure_remotely, job, ...)     # {"result", "files", "ran_on"} or a failure
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

from figures_src.runner.codeship import CODE_ID_FILE, cache_root, put_first_on_path
from mechinterp.atomic_file import write_atomic

CODE_FOLDER = Path(__file__).resolve().parents[2]   # <cache>/code/<code id>/ when shipped


def code_identity() -> str:
    """The identity of the code this worker process imported: the shipped copy's CODE_ID, or
    the folder it came from when it was not shipped."""
    marker = CODE_FOLDER / CODE_ID_FILE
    return marker.read_text().strip() if marker.is_file() else f"an unshipped copy in {CODE_FOLDER}"


def check_code(runner_code: str, dask_worker=None) -> str | None:
    """client.run's form of refusal (it passes the worker as dask_worker)."""
    return refusal(runner_code, dask_worker.address if dask_worker else worker_address())


def refusal(runner_code: str, address: str) -> str | None:
    """The message refusing this worker when its code is not the runner's, else None."""
    held = code_identity()
    if held == runner_code:
        return None
    return (f"worker {address} holds the project's code at {held}, the runner's is at "
            f"{runner_code}; a worker keeps the code it first imported, so restart it (stop and start "
            f"`dask worker`) to take the runner's; uncommitted changes ship as <commit>+dirty.<digest>")


def worker_address() -> str:
    from distributed import get_worker
    try:
        return get_worker().address
    except ValueError:  # not inside a worker (a direct call)
        return "local"


def blob_path(digest: str) -> Path:
    return cache_root() / "blobs" / digest


def missing_blobs(digests: list[str], dask_worker=None) -> list[str]:
    return [digest for digest in digests if not blob_path(digest).is_file()]


def store_blobs(blobs: dict[str, bytes], dask_worker=None) -> int:
    """Keep each blob under its sha256 (checked), written whole then renamed; the count stored."""
    for digest, data in blobs.items():
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest[:12]} arrived damaged")
        write_atomic(blob_path(digest), data)
    return len(blobs)


def models_folder(task_dir: Path, model_files: dict[str, str]) -> Path:
    """task_dir/models with each 'name/file' linked (or copied) from its blob."""
    folder = task_dir / "models"
    for relative, digest in model_files.items():
        source = blob_path(digest)
        if not source.is_file():
            raise FileNotFoundError(f"worker {worker_address()} lacks {relative} (blob {digest[:12]}); "
                                    "it joined after the checkpoints were shipped: run again")
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return folder


def figure_threads() -> int:
    """MECHINTERP_THREADS, or this worker's cores shared among its task threads: the torch threads
    of a figure on a GPU (on the CPU it gets one: worker.figure_threads)."""
    from distributed import get_worker
    try:
        nthreads = get_worker().state.nthreads
    except ValueError:
        nthreads = 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return int(os.environ.get("MECHINTERP_THREADS") or max(1, cores // nthreads))


def make_figure_remotely(job: dict) -> dict:
    """Make one figure on this worker; its result, files (bytes) and where it ran, or a failure."""
    put_first_on_path(CODE_FOLDER)   # later imports come from this code, whatever else was shipped
    ran_on = {"worker": worker_address(), "host": socket.gethostname(), "device": job["device"]}
    if message := refusal(job["code_id"], ran_on["worker"]):
        return {"refused": message, "ran_on": ran_on}
    from figures_src.runner.worker import failure_report, make_figure
    task_dir = Path(tempfile.mkdtemp(dir=_tasks_root(), prefix="figure-"))
    try:
        script = task_dir / "script" / job["script_name"]
        script.parent.mkdir()
        script.write_text(job["script_text"])
        staging = task_dir / "staging"
        staging.mkdir()
        local = {**job, "script": str(script), "staging_dir": str(staging), "threads": figure_threads(),
                 "models_dir": str(models_folder(task_dir, job["model_files"]))}
        try:
            result = make_figure(local)
        except Exception as error:  # the figure's own failure: the runner reports it
            named = runner_paths(script, job["script_shown"])
            report = failure_report(error, named)
            report["error"] = report["error"].replace(str(script), job["script_shown"])
            return {**report, "ran_on": ran_on}
        ran_on["device"] = result["device"]
        files = {path.name: path.read_bytes() for path in sorted(staging.iterdir())}
        return {"result": result, "files": files, "ran_on": ran_on}
    finally:
        shutil.rmtree(task_dir, ignore_errors=True)


def runner_paths(script: Path, shown_script: str):
    """A failure's file as the speaker knows it: this task's copy of the script is the runner's
    figures_src/... file, and a shipped module (<cache>/code/<id>/my_lab/x.py) its my_lab/x.py."""
    from mechinterp.models.failures import shown_path

    def named(filename: str) -> str:
        path = Path(filename).resolve()
        if path == script.resolve():
            return shown_script
        if path.is_relative_to(CODE_FOLDER):
            return path.relative_to(CODE_FOLDER).as_posix()
        return shown_path(filename)
    return named


def _tasks_root() -> Path:
    folder = cache_root() / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def train_model_remotely(job: dict) -> dict:
    """Train one zoo model on this worker from the runner's zoo.yaml text; its files as bytes, or
    the zoo's failure block naming the runner's zoo.yaml line."""
    put_first_on_path(CODE_FOLDER)
    ran_on = {"worker": worker_address(), "host": socket.gethostname(), "device": job["device"]}
    if message := refusal(job["code_id"], ran_on["worker"]):
        return {"refused": message, "ran_on": ran_on}
    task_dir = Path(tempfile.mkdtemp(dir=_tasks_root(), prefix="model-"))
    try:
        return {**_train_into(task_dir / "models", job, ran_on), "ran_on": ran_on}
    finally:
        shutil.rmtree(task_dir, ignore_errors=True)


def _train_into(models: Path, job: dict, ran_on: dict) -> dict:
    """Build the job's model into `models` with the zoo's build_one; {"files"} or {"failure"}."""
    from mechinterp.device import torch_threads
    from mechinterp.models.config import read_zoo
    from mechinterp.models.failures import failure_block
    from mechinterp.models.zoo import as_device, build_one
    models.mkdir()
    (models / "zoo.yaml").write_text(job["zoo_text"])
    zoo = read_zoo(models / "zoo.yaml", shown_as=job["zoo_shown"])   # messages name the runner's file
    try:
        device = as_device(job["device"])
    except (RuntimeError, ValueError) as error:   # a worker offering GPU=1 whose torch sees no GPU
        return {"failure": f"zoo: {zoo.problem_block(job['name'], str(error))}"}
    ran_on["device"] = str(device)
    try:
        with torch_threads(job["threads"]):   # the zoo's CPU thread count: the same weights everywhere
            build_one(job["name"], zoo, models, device)
    except Exception as error:  # noqa: BLE001 - the entry's own problem: the runner prints it
        return {"failure": failure_block(job["name"], zoo, error)}
    return {"files": {path.name: path.read_bytes() for path in sorted((models / job["name"]).iterdir())}}
