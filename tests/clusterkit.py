"""Test support: a real Dask cluster on 127.0.0.1 (a `dask scheduler` and `dask worker`
processes, each in its own folder with its own worker cache and no PYTHONPATH to this checkout)
and the runner run against it as a subprocess.

    cluster = LocalCluster(tmp_path); cluster.start_worker("w1"); cluster.wait_for_workers(1)
    result = runner(scripts, figures, models, "--cluster", cluster.address, cwd=project)
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import distributed

REPO = Path(__file__).resolve().parent.parent
# `python -m dask`, not the console script: it also runs where the packages are a --target install
DASK = [sys.executable, "-m", "dask"]


class LocalCluster:
    """A scheduler and workers as real `dask` processes, each in its own folder."""

    def __init__(self, root: Path):
        self.root, self.workers = root, {}
        folder = root / "scheduler"
        folder.mkdir()
        self.scheduler = self._start(folder, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--no-dashboard", "--scheduler-file", str(folder / "address.json"))
        deadline = time.time() + 60
        while not (folder / "address.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        self.address = json.loads((folder / "address.json").read_text())["address"]
        self.client = distributed.Client(self.address, timeout=30, set_as_default=False)

    def _start(self, folder: Path, *args) -> subprocess.Popen:
        # the project's code reaches a worker only through the runner (codeship); other entries of
        # PYTHONPATH stay (where packages are installed with --target, as on the lent GPU machine)
        kept = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if entry and Path(entry).resolve() != REPO]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"PYTHONPATH": os.pathsep.join(kept)} if kept else {}
        env["MECHINTERP_WORKER_CACHE"] = str(folder / "cache")
        with open(folder / "log.txt", "wb") as log:
            return subprocess.Popen([*DASK, *args], cwd=folder, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)

    def start_worker(self, name: str, *options: str) -> None:
        """A worker in its own folder; `options` are more `dask worker` flags (--resources GPU=1)."""
        folder = self.root / name
        folder.mkdir()
        self.workers[name] = self._start(folder, "worker", self.address, "--nthreads", "1",
                                         "--no-nanny", "--no-dashboard", "--name", name, *options)

    def wait_for_workers(self, count: int) -> None:
        self.client.wait_for_workers(count, timeout=60)

    def wait_for_names(self, *names: str, timeout: float = 60) -> None:
        """Until the scheduler's workers are exactly `names`: after a kill, a count alone can
        still see the dead worker, which the scheduler drops only when it notices."""
        deadline = time.time() + timeout
        while sorted(w.get("name") for w in self.client.scheduler_info()["workers"].values()) != sorted(names):
            if time.time() > deadline:
                raise TimeoutError(f"the scheduler's workers did not become {sorted(names)}")
            time.sleep(0.1)

    def worker_by_pid(self) -> dict[int, str]:
        return {pid: address for address, pid in self.client.run(os.getpid).items()}

    def stop(self) -> None:
        """Kill outright: no nanny, so nothing outlives them, and a graceful close takes seconds."""
        self.client.close()
        for process in [*self.workers.values(), self.scheduler]:
            process.kill()
            process.wait()


def runner(scripts, figures, models, *extra, cwd=REPO, wait=True):
    command = [sys.executable, "-m", "figures_src.runner", "--scripts-dir", str(scripts),
               "--figures-dir", str(figures), "--models-dir", str(models), "--profile", "quick",
               "--device", "cpu", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def entries(figures: Path) -> dict:
    return json.loads((figures / "manifest.json").read_text())["figures"]


def files_of(folder: Path) -> dict:
    """Every output and the manifest, byte for byte (the runner's lock lives elsewhere)."""
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
