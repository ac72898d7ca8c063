"""`make models CLUSTER=...`: the zoo's stale models trained on a Dask cluster, one task each.

    python -m figures_src.runner.zoo_cluster --cluster tcp://host:8786 [--device cpu] [--names a b]

The zoo decides what is stale (mechinterp/models/inputs.py), exactly as `make models` does. A
trained model whose data is generated from code (shapes, digits; a `trainer:` entry without a
dataset, such as a transformer trained on generated sequences) is sent with the code
(cluster.py's shipping) and the zoo.yaml text; the worker trains it with the zoo's own build_one
and sends back its checkpoint and meta.json. The runner writes the checkpoint, then meta.json with
the inputs recomputed here (so staleness reads this machine's files) and where it was trained,
each atomically. It trains on the cluster's device (auto: cpu; cuda: on workers that offer GPU=1);
a build of every model skips the entries that device does not train with the zoo's own rule and
line (config.buildable), and a model that fails there is the zoo's block, naming this zoo.yaml's
line. Imported weights and datasets read from files are built here, as before: their
files are not shipped. `make figures CLUSTER=...` trains the stale models its figures read the same
way (build_on_cluster). It lives in the runner package because the engine never imports it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from pathlib import Path

from figures_src.runner.cluster import accepted_workers, cluster_device, connect, ship_code, shipped
from figures_src.runner.paths import MODELS_DIR, REPO_ROOT, SCRIPTS_DIR
from figures_src.runner.signals import INTERRUPTS, Interrupted, stop_signals_handled
from mechinterp.atomic_file import write_atomic
from mechinterp.models.config import ZooError, buildable, is_imported, read_zoo
from mechinterp.models.inputs import PROCEDURAL_DATASETS, build_records, model_inputs, model_stale_reason
from mechinterp.names import did_you_mean

CPU_TRAINING_THREADS = 1   # the zoo's: one thread gives the same weights on every machine


def travels(entry: dict) -> bool:
    """Whether a worker can train this entry: it trains on data generated from code (a procedural
    dataset, or a trainer's sequences); imports and file datasets are built here."""
    generated = entry.get("dataset") in PROCEDURAL_DATASETS or ("trainer" in entry and "dataset" not in entry)
    return not is_imported(entry) and generated


def default_names(zoo, device: str) -> list[str]:
    """What a build of every model takes: the zoo's skip rule (config.buildable) for the device
    each is built on, the cluster's for those that travel, this machine's for the others; and
    every broken entry, to be reported."""
    there = [name for name, entry in zoo.entries.items() if travels(entry)]
    here = [name for name in zoo.entries if name not in there]
    here_device = local_device(device) if any("devices" in zoo.entries[n] for n in here) else device
    return (buildable(zoo, there, cluster_device(device)) + buildable(zoo, here, here_device)
            + sorted(set(zoo.problems) - set(zoo.entries)))


def local_device(requested: str) -> str:
    """The device type the zoo builds on here for `requested` (auto: the best present)."""
    from mechinterp.device import pick_device
    return pick_device("auto").type if requested == "auto" else requested


def split_stale(zoo, models_dir: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """(stale models a worker can train, stale models built here) among names; a broken entry is
    left to the zoo here, which reports it."""
    remote, here = [], []
    for name in names:
        if name in zoo.problems:
            here.append(name)
        elif model_stale_reason(name, zoo, models_dir) is not None:
            (remote if travels(zoo.entries[name]) else here).append(name)
    return remote, here


def install_model(name: str, outcome: dict, zoo, models_dir: Path) -> str:
    """Write the trained model's checkpoint, then its meta.json; the line to print."""
    if "failure" in outcome:   # the zoo's own block, naming the runner's zoo.yaml line
        return f"{outcome['failure']}\n  (on the cluster, at {outcome['ran_on']['worker']})"
    if "files" not in outcome:   # a refused worker, or a task the cluster could not finish
        return f"zoo: cannot build {name!r} on the cluster: {outcome.get('refused') or outcome['error']}"
    folder = models_dir / name
    meta = json.loads(outcome["files"].pop("meta.json"))
    for file_name, data in outcome["files"].items():
        write_atomic(folder / file_name, data)
    meta.update(inputs=model_inputs(name, zoo, models_dir), **build_records(zoo.entries[name]))
    meta["ran_on"] = outcome["ran_on"]
    write_atomic(folder / "meta.json", (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return f"zoo: {name} trained at {outcome['ran_on']['worker']} on {outcome['ran_on']['device']}"


def submit_models(client, names: list[str], zoo, code_id: str, device: str, restrict_to: list[str] | None):
    """{future: name} for the models `names`, trained on `device` there (cuda: on a worker that
    offers a GPU)."""
    resources = {"GPU": 1} if device == "cuda" else None
    jobs = {name: {"code_id": code_id, "name": name, "zoo_text": zoo.path.read_text(), "zoo_shown": zoo.shown,
                   "device": device, "threads": CPU_TRAINING_THREADS} for name in names}
    return {client.submit(shipped("train_model_remotely"), job, key=f"model-{name}-{uuid.uuid4().hex[:8]}",
                          pure=False, resources=resources, workers=restrict_to): name
            for name, job in jobs.items()}


def train_on_cluster(client, names: list[str], config: Path, models_dir: Path, device: str) -> dict[str, str]:
    """Train `names` on the cluster, installing each as it returns; {name: failure}."""
    from figures_src.runner.cluster import (NoWorkersLeft, SchedulerLost, as_finished, outcome_of, unplaceable,
                                            wait_for_a_worker)
    bundle = ship_code(client, SCRIPTS_DIR, models_dir)
    wait_for_a_worker(client, client.scheduler.address)
    workers, refused = accepted_workers(client, bundle.code_id)
    for line in refused:
        print(line, file=sys.stderr)
    if not workers:
        raise SystemExit("error: no worker of the cluster can train models (see above)")
    zoo, device = read_zoo(config), cluster_device(device)
    offered = client.scheduler_info(n_workers=-1)["workers"]
    if reason := unplaceable({"GPU": 1} if device == "cuda" else {}, offered, workers):
        failures = {name: f"zoo: cannot build {name!r} on the cluster on {device}: {reason}" for name in names}
        print("\n".join(failures.values()), file=sys.stderr, flush=True)
        return failures
    futures, failures = submit_models(client, names, zoo, bundle.code_id, device, workers if refused else None), {}
    try:
        for future in as_finished(client, dict(futures), client.scheduler.address):
            name = futures.pop(future)
            with INTERRUPTS.deferred():   # checkpoint and meta.json go in together
                line = install_model(name, outcome_of(future), zoo, models_dir)
            if line.startswith("zoo: cannot"):
                failures[name] = line
            print(line, file=sys.stderr, flush=True)
    except NoWorkersLeft as stop:
        client.cancel(list(futures), force=True)
        for name in futures.values():
            failures[name] = f"zoo: cannot build {name!r} on the cluster: no worker took it {stop}"
            print(failures[name], file=sys.stderr, flush=True)
    except SchedulerLost:
        for name in futures.values():
            failures[name] = (f"zoo: cannot build {name!r} on the cluster: lost the Dask scheduler mid-run (it "
                              "stopped, or the network to it did); restart it and its workers, then run again")
            print(failures[name], file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        raise Interrupted(list(futures.values()), 0, len(names) - len(futures)) from None
    return failures


def train_remote(names: list[str], config: Path, options) -> dict[str, str]:
    """Connect, train `names` on the cluster, close; {name: failure}."""
    from figures_src.runner.cluster import raise_if_scheduler_lost
    client, started = connect(options.cluster, options.cluster_config)
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)   # as the figures' runs do
    try:
        return train_on_cluster(client, names, config, options.models_dir, options.device)
    except OSError as error:      # while sending the code or the tasks
        raise_if_scheduler_lost(client, options.cluster, error)
        raise
    finally:
        client.close()
        if started is not None:
            started.close()


def build_on_cluster(config: Path, options, names: list[str]) -> dict[str, str]:
    """The figure runner's call (planning.build_stale_models with --cluster): the stale models
    among `names`, trained on the cluster where they can be, here otherwise; {name: failure}."""
    remote, here = split_stale(read_zoo(config), options.models_dir, names)
    return build(config, options, remote, here, options.jobs)


def build(config: Path, options, remote: list[str], here: list[str], jobs: int) -> dict[str, str]:
    """Train `remote` on the cluster, then build `here` (imported weights, file datasets, broken
    entries) with the zoo itself, `jobs` at a time; {name: failure}."""
    from mechinterp.models.zoo import train_zoo_models
    failures = train_remote(remote, config, options) if remote else {}
    if here:
        failures.update(train_zoo_models(config, options.models_dir, here, options.device, jobs))
    return failures


def chosen_names(zoo, options) -> list[str]:
    """--names, each checked against zoo.yaml, or without them default_names."""
    for name in options.names or []:
        if name not in zoo.entries and name not in zoo.problems:
            raise ZooError(f"{zoo.shown} has no model {name!r}{did_you_mean(name, [*zoo.entries, *zoo.problems])}: "
                           "give --names the models of zoo.yaml to build (without it, every one)")
    return options.names or default_names(zoo, options.device)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(prog="make models CLUSTER=...", description=__doc__.split("\n")[0])
    parser.add_argument("--cluster", required=True, help="tcp://host:8786, or slurm")
    parser.add_argument("--cluster-config", type=Path, default=REPO_ROOT / "cluster.yaml")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_options(argv)
    config = options.models_dir / "zoo.yaml"
    try:
        zoo = read_zoo(config)
        remote, here = split_stale(zoo, options.models_dir, chosen_names(zoo, options))
    except ZooError as error:
        print(f"zoo: {error}", file=sys.stderr)
        return 2
    with stop_signals_handled():
        try:
            failures = build(config, options, remote, here, os.cpu_count() or 1)
        except Interrupted as stop:
            print(f"\n{stop.line().replace('figure', 'model')}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:   # while the zoo builds here
            print("\nzoo: interrupted; the models built before it are kept, the others are as they were",
                  file=sys.stderr)
            return 130
    print(f"zoo: {len(set(remote) - set(failures))} trained on the cluster, "
          f"{len(set(here) - set(failures))} built here, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
