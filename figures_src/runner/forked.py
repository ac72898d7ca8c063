"""Figure workers forked from one process that has already imported torch and matplotlib.

Each figure runs in a process of its own, so that its globals, its memory and a crash never reach
the next figure. A fresh Python per figure paid about 3 s of imports each time (torch alone is most
of it), more than many figures compute. So the workers are forked from a multiprocessing
forkserver, started once per run, that imports torch, matplotlib and the worker's modules first;
a fork costs milliseconds and the child starts with them loaded. The forkserver never touches
CUDA or runs a torch operation, so a child may use either (CUDA and OpenMP do not survive a fork
once started). A forkserver that dies (killed, out of memory) is started again by multiprocessing at
the next worker; a worker whose start fails that way twice raises WorkerStartError, saying why.

As before, each worker has its own process group (a terminal's Ctrl-C reaches only the runner,
which stops the workers itself: jobs.stop_workers), and exits when its runner dies: the runner
holds the write end of a pipe whose read end the worker watches for end-of-file.

    process = ForkedWorker(job_file)      # started (WorkerStartError when it cannot be)
    process.poll()                        # None while it runs, else its exit code
    process.signal_group(signal.SIGTERM)
    process.close(); process.wait()
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing import resource_tracker
from pathlib import Path

PRELOAD = ["torch", "matplotlib.pyplot", "figures_src.runner.worker", "figures_src.runner.context",
           "figures_src.runner.style", "mechinterp.device"]
PROCESS_NAME = b"figure-worker"      # /proc/<pid>/comm of a worker: its command line is the forkserver's
PR_SET_NAME = 15


def forkserver():
    """The multiprocessing context whose server imports PRELOAD once (it starts at the first worker)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class WorkerStartError(RuntimeError):
    """The forkserver failed (died, or refused) twice while starting a worker."""


class ForkedWorker:
    """One figure worker (worker.worker_main on a job file), forked; what the runner asks of it."""

    def __init__(self, job_file: Path):
        for attempt in (1, 2):
            try:
                self.process, self.runner_alive = start(job_file)
                break
            except (EOFError, OSError) as error:    # the forkserver died before it sent the pid
                wait_for_forkserver_exit()
                if attempt == 2:
                    raise WorkerStartError(
                        "could not start a figure worker: the process that forks them failed twice "
                        f"while starting one ({type(error).__name__}: {error}); "
                        "it imports torch and matplotlib, so check free memory (dmesg names the OOM "
                        "killer) and that `python -c 'import torch, matplotlib'` works") from None
        self.pid = self.process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def signal_group(self, sig: int) -> None:
        """Signal the worker's process group; the worker alone before it has made its group."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Close the runner's end of the pipe: the worker, if it still runs, exits."""
        self.runner_alive.close()

    def wait(self) -> int | None:
        self.process.join()
        return self.process.exitcode


def start(job_file: Path):
    """Fork a worker on job_file; (its process, the runner's end of the pipe it watches)."""
    context = forkserver()
    reader, runner_alive = context.Pipe(duplex=False)
    process = context.Process(target=run_forked, args=(str(job_file), reader), daemon=False)
    # The first start spawns the forkserver, in the runner's process group: a terminal's Ctrl-C
    # in its first seconds (importing torch, before multiprocessing ignores SIGINT there) would
    # kill it with a traceback. Spawned with SIGINT blocked it never sees one; the runner's own
    # Ctrl-C waits the moment until the worker is started and tracked (jobs.run_stale).
    resource_tracker.ensure_running()   # first: spawning it unblocks SIGINT again on its way out
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    except BaseException:
        runner_alive.close()
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        reader.close()
    return process, runner_alive


def wait_for_forkserver_exit(seconds: float = 2.0) -> None:
    """Let a dying forkserver finish exiting, unreaped: it closes its sockets a moment before it
    can be waited for, and multiprocessing starts a new one only when waitpid finds it gone."""
    from multiprocessing import forkserver as forkserver_module
    pid = forkserver_module._forkserver._forkserver_pid      # multiprocessing keeps it privately
    deadline = time.monotonic() + seconds
    while pid and time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def run_forked(job_file: str, runner_alive) -> None:
    """The forked worker: its own process group and name, the runner watched, the figure made."""
    from figures_src.runner.worker import worker_main
    os.setpgid(0, 0)
    name_process()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)      # as a fresh Python: SIGTERM from the runner ends it
    signal.signal(signal.SIGINT, signal.default_int_handler)   # the forkserver ignores it, and blocks it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=exit_at_end_of_file, args=(runner_alive.fileno(),), daemon=True).start()
    sys.exit(worker_main(Path(job_file)))


def name_process() -> None:
    """Call the worker PROCESS_NAME where Linux keeps a process's name (ps, /proc/<pid>/comm)."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform.startswith("linux") else None
    if prctl is not None:
        prctl(PR_SET_NAME, PROCESS_NAME, 0, 0, 0)


def exit_at_end_of_file(fd: int) -> None:
    """The runner holds the pipe's other end: end-of-file means it is gone, so no orphan works on."""
    while os.read(fd, 1 << 16):
        pass
    os._exit(3)
