"""The runner's figures made on a Dask cluster (`make figures CLUSTER=tcp://host:8786` or
`CLUSTER=slurm`): only the execution travels.

Planning, staleness, the lock, the manifest and the atomic install stay in the runner, as for local
figures (cli.py, planning.py, jobs.py); this replaces the local process pool only. A run with
stale figures connects (an unreachable scheduler is one line naming it within CONNECT_SECONDS),
ships the code once per worker (codeship.py), refuses workers that hold other code, ships the
checkpoints each worker lacks by content hash, then submits each figure as one task (with the
figure's declared "resources", e.g. {"GPU": 1}: its device follows them). Each result comes
back as bytes and is installed and recorded like a local figure's, with where it ran (worker
address, host, device). A worker that dies mid-figure is the scheduler's to retry on another
(distributed.scheduler.allowed-failures, 3 by default); after that the figure is reported failed.
When the scheduler has no worker left, a line says so and names the figures waiting; if none
joins within $MECHINTERP_CLUSTER_WAIT seconds (120), they are reported failed.
Either way no file of it is written until its whole result is here. Ctrl-C cancels the remote
tasks (a figure already running finishes on its worker and is thrown away) and keeps the manifest
consistent. A run with nothing stale never connects.

    failures = run_stale_on_cluster(stale, options, manifest, figures_dir)   # {figure id: error}
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from figures_src.runner.jobs import (engine_commit, install_outputs, job_for, record, record_failure,
                                     warning_lines)
from figures_src.runner.paths import REPO_ROOT, STAGING_ROOT
from figures_src.runner.signals import INTERRUPTS, Interrupted
from figures_src.runner.staleness import Manifest, file_hash
from mechinterp.models.failures import shown_path

CONNECT_SECONDS = 5
WAIT_ENV = "MECHINTERP_CLUSTER_WAIT"   # seconds to wait for a worker when none is left (default 120)
POLL_SECONDS = 1


class NoWorkersLeft(RuntimeError):
    """The scheduler had no worker for the whole wait (the message: for how long, what to do)."""


class SchedulerLost(RuntimeError):
    """The connection to the scheduler broke mid-run (it stopped, or the network to it did)."""


def connect(target: str, config: Path):
    """(client, the cluster it started or None) for `target`: an address, or "slurm" (a
    SLURMCluster from the config file)."""
    import distributed
    if target == "slurm":
        from figures_src.runner.slurm import start_slurm_cluster
        return start_slurm_cluster(config)
    if problem := address_problem(target):
        raise SystemExit(f"error: CLUSTER={target}: {problem}; the form is tcp://host:8786 "
                         "(a `dask scheduler`'s address), or slurm")
    try:
        return distributed.Client(target, timeout=CONNECT_SECONDS, set_as_default=False), None
    except (OSError, TimeoutError, ValueError) as error:
        raise SystemExit(f"error: cannot reach the Dask scheduler at {target} within "
                         f"{CONNECT_SECONDS} s ({type(error).__name__}); start one (`dask scheduler`) "
                         "or fix CLUSTER=") from None


def address_problem(target: str) -> str | None:
    """What is wrong with a scheduler address, said before connecting (distributed would only
    time out on it, then print a traceback as the half-made client is collected), or None."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend
    try:
        scheme, location = parse_address(target)
        get_backend(scheme)
    except ValueError as error:
        return str(error).replace("address scheme", "protocol").replace("known schemes", "known")
    if scheme == "inproc":
        return None
    try:
        host, port = parse_host_port(location)
    except ValueError:
        port = location.rpartition(":")[2] if ":" in location else ""
        return f"the port {port!r} is not a number" if port else "it has no port"
    return None if host else "it has no host"


def shipped(function_name: str):
    """A callable that runs figures_src.runner.remote.<function_name> from the code shipped to
    the worker. It is a closure so that it travels by value (cloudpickle): the scheduler, which
    unpickles the task graph, and the worker have no copy of this project to import it from."""
    def call(*args, dask_worker=None):   # client.run passes the worker it runs on
        import importlib
        function = getattr(importlib.import_module("figures_src.runner.remote"), function_name)
        return function(*args) if dask_worker is None else function(*args, dask_worker=dask_worker)
    return call


def own_modules(scripts_dir: Path, models_dir: Path, repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """{name on a worker's path: file} of the speaker's own modules (not the engine's) that the
    figures import (discover.py) and that the zoo's architectures and trainers are made of
    (inputs.code_files): all of them, whichever figures are stale, so the code's identity does
    not depend on what one run makes."""
    from figures_src.runner.discover import ENGINE_PACKAGES, UnreadableScriptError, discover_figures
    from mechinterp.models.config import ZooError, read_zoo
    from mechinterp.models.inputs import code_files
    try:
        specs = discover_figures(scripts_dir, repo_root)
    except UnreadableScriptError as error:   # the run goes on with the scripts that parse
        specs = error.found
    files = {path.resolve().relative_to(repo_root.resolve()).as_posix(): path
             for spec in specs.values() for path in [*spec.engine_files, *spec.import_files]}
    with contextlib.suppress(OSError, ZooError):   # no zoo, or one the planning already refused
        for entry in read_zoo(models_dir / "zoo.yaml").entries.values():
            files.update(code_files(entry))
    return {name: path for name, path in files.items() if name.split("/")[0] not in ENGINE_PACKAGES}


def ship_code(client, scripts_dir: Path, models_dir: Path, repo_root: Path = REPO_ROOT):
    """Register the code plugin (sent only to workers that lack it); the bundle shipped."""
    import cloudpickle
    from figures_src.runner import codeship
    from figures_src.runner.discover import figure_scripts
    cloudpickle.register_pickle_by_value(codeship)   # a worker has no copy of it to import
    scripts = {str(path.resolve().relative_to(repo_root)) for path in figure_scripts(repo_root / "figures_src")}
    bundle = codeship.code_bundle(repo_root, scripts, own_modules(scripts_dir, models_dir, repo_root))
    plugin = codeship.CodePlugin(bundle.code_id, bundle.archive)
    # a lambda travels by value: the scheduler has no copy of this module
    for name in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins)):
        if name.startswith("mechinterp-code-") and name != plugin.name:  # an earlier code's: a
            client.unregister_worker_plugin(name)                       # new worker must not take it
    client.register_plugin(plugin)
    return bundle


def wait_for_a_worker(client, address: str) -> None:
    """A scheduler with no worker yet (started a moment ago, its workers on their way): one line,
    then up to worker_wait() seconds for the first to join (accepted_workers says if none did)."""
    if client.nthreads():
        return
    print(f"the scheduler at {address} has no workers yet; waiting up to {worker_wait():.0f} s ({WAIT_ENV}) "
          "for one to join (`dask worker`)", file=sys.stderr, flush=True)
    with contextlib.suppress(TimeoutError):
        client.wait_for_workers(1, timeout=worker_wait())


def accepted_workers(client, code_id: str) -> tuple[list[str], list[str]]:
    """(workers that hold the runner's code and run one task at a time, one refusal line for
    each of the others)."""
    answers = client.run(shipped("check_code"), code_id, on_error="return")
    threads = {w: info["nthreads"] for w, info in client.scheduler_info(n_workers=-1)["workers"].items()}
    refused = {}
    for worker, answer in answers.items():
        if isinstance(answer, BaseException):
            refused[worker] = f"worker {worker} cannot import the shipped code ({type(answer).__name__}: {answer})"
        elif answer:
            refused[worker] = answer
        elif threads.get(worker, 1) > 1:   # figures set process-wide state: style, seeds, threads
            refused[worker] = (f"worker {worker} runs {threads[worker]} threads, and figures set "
                               "process-wide state (style, seeds, torch threads): start it with --nthreads 1")
    return sorted(set(answers) - set(refused)), [f"refused: {line}" for line in refused.values()]


def model_files(spec, models_dir: Path) -> dict[str, str]:
    """{'name/file': sha256} of every file in the folders of the models the figure reads."""
    files = {}
    for name in spec.models:
        for path in sorted((models_dir / name).glob("*")):
            if path.is_file():
                files[f"{name}/{path.name}"] = file_hash(path)
    return files


def ship_checkpoints(client, workers: list[str], wanted: dict[str, Path]) -> int:
    """Send each worker the blobs ({sha256: path}) it lacks; the number of blobs sent."""
    lacking = client.run(shipped("missing_blobs"), sorted(wanted), workers=workers)
    sent = 0
    for worker, digests in lacking.items():
        if digests:
            client.run(shipped("store_blobs"), {d: wanted[d].read_bytes() for d in digests}, workers=[worker])
            sent += len(digests)
    return sent


def cluster_device(requested: str) -> str:
    """The device a task runs on there: auto means cpu on a cluster (it keeps off the GPUs others
    hold); a task on cuda asks for a worker that offers a GPU."""
    return "cpu" if requested == "auto" else requested


def figure_device(spec, requested: str) -> str:
    """A figure that asks for a GPU runs on cuda; one that does not runs on cluster_device."""
    if "GPU" in spec.resources:
        return "cuda"
    return cluster_device(requested)


def figure_resources(spec, requested: str) -> dict:
    """What a worker must offer to make the figure: its own `resources`, and a GPU when it runs on
    cuda (DEVICE=cuda: a CPU worker's torch would refuse it)."""
    if figure_device(spec, requested) == "cuda":
        return {"GPU": 1, **spec.resources}
    return dict(spec.resources)


def remote_job(spec, options, code_id: str, files: dict[str, str]) -> dict:
    job = job_for(spec, options, Path("staging"))
    for local_only in ("staging_dir", "result_file", "models_dir", "threads"):
        del job[local_only]
    return {**job, "device": figure_device(spec, options.device), "code_id": code_id,
            "script_name": spec.script.name, "script_text": spec.script.read_text(), "model_files": files,
            "script_shown": shown_path(str(spec.script))}   # how a failure names it: as a local run does


def unplaceable(resources: dict, offered: dict, workers: list[str]) -> str | None:
    """Why none of `workers` can take a task asking for `resources` ({"GPU": 1}; offered: the
    scheduler's {worker: info}), or None."""
    if not resources:
        return None
    if any(all(offered.get(w, {}).get("resources", {}).get(k, 0) >= v for k, v in resources.items())
           for w in workers):
        return None
    wanted = " ".join(f"{k}={v}" for k, v in resources.items())
    return (f"no worker of the cluster offers {wanted}; start one with "
            f"`dask worker SCHEDULER --resources {wanted}` (CLUSTER=slurm: set gpus in cluster.yaml)")


def outcome_of(future) -> dict:
    """The task's answer, or a failure for a task the cluster could not finish."""
    from distributed import KilledWorker
    try:
        return future.result()
    except KilledWorker:
        return {"error": "every worker that took it died mid-figure (killed, or out of memory?); "
                         "its previous outputs are kept", "frames": []}
    except Exception as error:  # noqa: BLE001 - the cluster's own failure, not the figure's
        return {"error": f"the cluster could not run it: {type(error).__name__}: {error}", "frames": []}


def worker_wait() -> float:
    return float(os.environ.get(WAIT_ENV) or 120)


def as_finished(client, names: dict, address: str):
    """Each future of `names` ({future: what it makes}) as it finishes. While the scheduler has no
    worker, one line says so, naming what waits; if none joins within worker_wait(), NoWorkersLeft."""
    from distributed import wait
    from distributed.client import FuturesCancelledError
    pending, alone_since = set(names), None
    while pending:
        try:
            with client.as_current():   # wait() finds the client it waits through this way
                done = wait(list(pending), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        except (FuturesCancelledError, OSError):   # the client cancels them all when its scheduler is gone
            raise SchedulerLost() from None
        pending -= done
        yield from done
        if done or not pending:
            continue
        try:
            threads = client.nthreads()
        except OSError:
            raise SchedulerLost() from None
        if threads:
            if alone_since is not None:
                print("a worker joined; going on", file=sys.stderr, flush=True)
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
            print(f"the scheduler at {address} has no workers left; waiting up to {worker_wait():.0f} s "
                  f"({WAIT_ENV}) for one to join: {', '.join(sorted(names[f] for f in pending))} pending",
                  file=sys.stderr, flush=True)
        elif time.monotonic() - alone_since > worker_wait():
            raise NoWorkersLeft(f"within {worker_wait():.0f} s (the scheduler has none left: start one with "
                                "`dask worker`)")


def install_remote(spec, inputs, outcome: dict, staging: Path, manifest: Manifest,
                   figures_dir: Path, commit: str, failures: dict) -> str:
    """Install and record a figure that came back, or add its failure; the line to print."""
    if "result" not in outcome:
        failures[spec.figure_id] = outcome.get("refused") or outcome["error"]
        if "refused" not in outcome:   # the figure's own failure, not the cluster's refusal
            record_failure(manifest, spec, inputs, outcome["error"], outcome.get("frames", []))
        frames = "".join(f"\n    {line}" for line in outcome.get("frames", []))
        return f"FAILED {spec.figure_id}: {failures[spec.figure_id]}{frames}"
    staging.mkdir(parents=True, exist_ok=True)
    for name, data in outcome["files"].items():
        (staging / name).write_bytes(data)
    result = {**outcome["result"], "ran_on": outcome["ran_on"]}
    record(manifest, spec, inputs, install_outputs(spec, staging, figures_dir), result, commit)
    return (f"made   {spec.figure_id} ({result['seconds']:.1f} s on {result['device']} at {result['ran_on']['worker']})"
            + warning_lines(spec.figure_id, result))


def submit_all(client, stale, options, code_id: str, workers: list[str], restrict: bool, failures: dict):
    """{future: (spec, inputs)} for every stale figure some worker can take."""
    wanted, jobs = {}, {}
    offered = client.scheduler_info(n_workers=-1)["workers"]
    for spec, inputs, _ in stale:
        if reason := unplaceable(figure_resources(spec, options.device), offered, workers):
            failures[spec.figure_id] = reason
            print(f"cannot {spec.figure_id}: {reason}", file=sys.stderr, flush=True)
            continue
        files = model_files(spec, options.models_dir)
        wanted.update({digest: options.models_dir / relative for relative, digest in files.items()})
        jobs[spec.figure_id] = (spec, inputs, remote_job(spec, options, code_id, files))
    ship_checkpoints(client, workers, wanted)
    return {client.submit(shipped("make_figure_remotely"), job, key=f"figure-{spec.figure_id}-{uuid.uuid4().hex[:8]}",
                          pure=False, resources=figure_resources(spec, options.device) or None,
                          workers=workers if restrict else None): (spec, inputs)
            for spec, inputs, job in jobs.values()}


def run_stale_on_cluster(stale, options, manifest: Manifest, figures_dir: Path) -> dict[str, str]:
    """Make every stale figure on the cluster; install and record each as it returns; {id: error}.
    Raises Interrupted on a stop signal, after cancelling the remote tasks."""
    with INTERRUPTS.deferred():
        client, started = connect(options.cluster, options.cluster_config)
    # the client's own reports of a broken connection (tracebacks while it tries to reconnect) say
    # less than the one line SchedulerLost gives
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    try:
        return _run_on(client, stale, options, manifest, figures_dir)
    except OSError as error:      # while sending the code or the tasks
        raise_if_scheduler_lost(client, options.cluster, error)
        raise
    finally:
        client.close(timeout=CONNECT_SECONDS)
        if started is not None:  # the Slurm jobs this run submitted
            started.close()


def raise_if_scheduler_lost(client, address: str, error: OSError) -> None:
    """SystemExit with one line when `error` came of the scheduler going away (the client is no
    longer running); else nothing, and the caller re-raises it."""
    if client.status != "running":
        raise SystemExit(f"error: lost the Dask scheduler at {address} before the work was sent (it stopped, "
                         f"or the network to it did: {type(error).__name__}); nothing was changed here; restart "
                         "the scheduler and its workers, then run again") from None


def _run_on(client, stale, options, manifest: Manifest, figures_dir: Path) -> dict[str, str]:
    bundle = ship_code(client, options.scripts_dir, options.models_dir)
    wait_for_a_worker(client, options.cluster)
    workers, refused = accepted_workers(client, bundle.code_id)
    for line in refused:
        print(line, file=sys.stderr)
    if not workers:
        raise SystemExit(f"error: no worker of {options.cluster} can take figures" +
                         (" (every one was refused above)" if refused else
                          f" (none joined within {worker_wait():.0f} s: start one with `dask worker`)"))
    failures: dict[str, str] = {}
    futures = submit_all(client, stale, options, bundle.code_id, workers, bool(refused), failures)
    staging_root = STAGING_ROOT / f"run-{os.getpid()}"
    commit, made = engine_commit(REPO_ROOT), 0
    try:
        for future in as_finished(client, {f: spec.figure_id for f, (spec, _) in futures.items()}, options.cluster):
            spec, inputs = futures.pop(future)
            staging = staging_root / spec.figure_id.replace("/", "__")
            with INTERRUPTS.deferred():  # outputs and manifest entry go in together
                line = install_remote(spec, inputs, outcome_of(future), staging, manifest,
                                      figures_dir, commit, failures)
            made += spec.figure_id not in failures
            print(line, file=sys.stderr if line.startswith("FAILED") else sys.stdout, flush=True)
    except NoWorkersLeft as stop:
        client.cancel(list(futures), force=True)
        waiting = [spec.figure_id for spec, _ in futures.values()]
        one = len(waiting) == 1
        failures.update({figure_id: f"no worker of {options.cluster} took it {stop}" for figure_id in waiting})
        print(f"FAILED {', '.join(waiting)}: no worker of {options.cluster} took {'it' if one else 'them'} {stop}; "
              f"{'its' if one else 'their'} previous outputs are kept", file=sys.stderr, flush=True)
    except SchedulerLost:
        lost = [spec.figure_id for spec, _ in futures.values()]
        failures.update({figure_id: f"lost the Dask scheduler at {options.cluster}" for figure_id in lost})
        kept = "its previous outputs kept" if len(lost) == 1 else "their previous outputs kept"
        print(f"error: lost the Dask scheduler at {options.cluster} mid-run (it stopped, or the network to it "
              f"did): {', '.join(lost)} not made, {kept}; restart the scheduler and its workers, then run again",
              file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        raise Interrupted([spec.figure_id for spec, _ in futures.values()], 0, made) from None
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return failures
