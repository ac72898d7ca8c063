"""Several zoo models built at once on the CPU: one process per model, one torch thread each.

The zoo trains every CPU model with one torch thread, so a model's weights are the same on every
machine; a 2-core machine then leaves a core idle for the whole zoo. build_in_processes runs up to
`jobs` builds side by side in spawned processes, each with the same single thread, so the weights
are bit for bit those of a build one after another (tested), in about half the time.

    metas, failures = build_in_processes(["shapes-cnn-a", "shapes-resnet18"], "models/zoo.yaml",
                                         "models", "cpu", force=False, jobs=2, threads=1)

Each process writes its model's files itself, atomically, as zoo.build_one always does. A stop
signal (Ctrl-C) reaches the parent alone: the builders ignore SIGINT, and the parent ends them
(SIGTERM, which runs their clean-up, so no temporary file is left) before it re-raises; on Linux a
parent killed outright takes its builders with it.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1          # Linux prctl: a signal for this process when its parent dies


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)        # finally blocks run: write_atomic removes its temp file


def _end_with_parent(parent: int) -> None:
    """On Linux, SIGTERM this builder when its parent dies (a runner killed with -9 leaves no
    model training on); elsewhere builders end when they next ask the gone parent for work."""
    from mechinterp.device import c_library
    with contextlib.suppress(OSError, AttributeError):     # no C library, or no prctl (not Linux)
        c_library().prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:                # it died before prctl took effect
        raise SystemExit(1)


def _start_builder(threads: int, parent: int) -> None:
    """A builder process: stop signals come from the parent, torch uses the zoo's thread count."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _end_with_parent(parent)
    import torch
    torch.set_num_threads(threads)


def _build(name: str, config_path: str, models_dir: str, device: str, force: bool):
    """In a builder: (name, meta, None) or (name, None, the zoo's failure block)."""
    from mechinterp.models.config import read_zoo
    from mechinterp.models.failures import failure_block
    from mechinterp.models.zoo import _build_if_stale, as_device
    zoo = read_zoo(config_path)
    try:
        return name, _build_if_stale(name, zoo, models_dir, as_device(device), force), None
    except Exception as error:  # noqa: BLE001 - one model's problem must not stop the others
        return name, None, failure_block(name, zoo, error)


def longest_first(names: list[str], zoo, models_dir) -> list[str]:
    """The builds in the order that ends soonest on a few processes: the longest first, by the
    last build's train_seconds; models never built, whose cost is unknown, first (torchvision
    architectures, the largest of the zoo, before ours), as the figure runner orders figures."""
    from mechinterp.models.zoo import load_meta

    def expected_seconds(name: str) -> float:
        try:
            return float(load_meta(name, models_dir).get("train_seconds") or 0.0)
        except (FileNotFoundError, ValueError, OSError):
            return float("inf")
    return sorted(names, key=lambda n: (-expected_seconds(n), "torchvision" not in zoo.entries.get(n, {})))


def build_in_processes(names: list[str], config_path, models_dir, device: str, force: bool,
                       jobs: int, threads: int) -> tuple[dict[str, dict], dict[str, str]]:
    """Build `names` (stale ones only, unless force) `jobs` at a time; ({name: meta}, {name: failure})
    in the order of `names`."""
    metas, failures = {}, {}
    context = multiprocessing.get_context("spawn")   # never fork a process that has run torch
    pool = context.Pool(min(jobs, len(names)), initializer=_start_builder,
                        initargs=(threads, os.getpid()))
    tasks = [(name, str(config_path), str(models_dir), str(device), force) for name in names]
    try:
        for name, meta, failure in pool.imap_unordered(_build_star, tasks):
            if failure is None:
                metas[name] = meta
            else:
                failures[name] = failure
                print(failure, file=sys.stderr, flush=True)
    except BaseException:            # Ctrl-C: end the builders now (their clean-up runs)
        pool.terminate()
        pool.join()
        raise
    pool.close()                     # done: the idle builders exit by themselves
    pool.join()
    return ({n: metas[n] for n in names if n in metas}, {n: failures[n] for n in names if n in failures})


def _build_star(task: tuple):
    return _build(*task)
