"""`CLUSTER=slurm`: Dask workers started as Slurm batch jobs by dask-jobqueue, from cluster.yaml.

cluster.yaml (at the repository root; `--cluster-config` or CLUSTER_CONFIG= names another):

    partition: gpu        # the Slurm partition (sbatch -p)
    cores: 8              # CPUs per job; the job's one worker runs one figure at a time and
                          # gives it every core (torch threads)
    memory: 32GB          # memory per job
    gpus: 1               # GPUs per job (--gres=gpu:N); its worker offers resources GPU=N
    walltime: "02:00:00"  # each job's time limit
    jobs: 2               # how many jobs (workers) to start
    account: null         # optional: sbatch -A
    python: null          # optional: the workers' Python (default: the runner's own)
    prologue: []          # optional: shell lines run before the worker (module load, ...)

    cluster = slurm_cluster(read_cluster_config(Path("cluster.yaml")))   # submits nothing yet
    print(cluster.job_script())
    client, cluster = start_slurm_cluster(Path("cluster.yaml"))          # submits `jobs` jobs
"""
from __future__ import annotations

import sys
from pathlib import Path

REQUIRED = ("partition", "cores", "memory", "walltime")
OPTIONAL = {"gpus": 0, "jobs": 1, "account": None, "python": None, "prologue": [], "wait_seconds": 600}


def read_cluster_config(path: Path) -> dict:
    """The settings, checked: one error naming the file and the key for anything wrong."""
    import yaml
    if not path.is_file():
        raise SystemExit(f"error: CLUSTER=slurm reads {path}, which does not exist: copy the example "
                         "in the README (partition, cores, memory, gpus, walltime)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise SystemExit(f"error: {path}{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    missing = [key for key in REQUIRED if data.get(key) in (None, "")]
    if unknown or missing or not isinstance(data, dict):
        problems = ([f"unknown key {k!r}" for k in unknown] + [f"missing {k!r}" for k in missing])
        raise SystemExit(f"error: {path}: {'; '.join(problems)} (keys: {', '.join(REQUIRED + tuple(OPTIONAL))})")
    return {**OPTIONAL, **data}


def slurm_cluster(config: dict):
    """A dask_jobqueue SLURMCluster for these settings (jobs are submitted only on scale())."""
    from dask_jobqueue import SLURMCluster
    gpus = int(config["gpus"])
    return SLURMCluster(
        queue=config["partition"], account=config["account"], walltime=str(config["walltime"]),
        cores=1, processes=1,                     # one figure at a time per worker: figures set global state
        job_cpu=int(config["cores"]), memory=str(config["memory"]),
        python=config["python"] or sys.executable,
        job_extra_directives=[f"--gres=gpu:{gpus}"] if gpus else [],
        worker_extra_args=["--resources", f"GPU={gpus}"] if gpus else [],
        job_script_prologue=list(config["prologue"]),
        job_name="mechinterp-figures")


def start_slurm_cluster(path: Path):
    """(client, cluster): submit the jobs and wait for the first worker."""
    from distributed import Client
    config = read_cluster_config(path)
    cluster = slurm_cluster(config)
    cluster.scale(jobs=int(config["jobs"]))
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(1, timeout=config["wait_seconds"])
    except TimeoutError:
        client.close()
        cluster.close()
        raise SystemExit(f"error: no Slurm worker started within {config['wait_seconds']} s "
                         f"(partition {config['partition']}): see `squeue --me`") from None
    return client, cluster
