"""`make models CLUSTER=...`: the zoo's stale models trained on a Dask cluster, one task each.

    python -m figures_src.runner.zoo_cluster --cluster tcp://host:8786 [--device cpu] [--names a b]

The zoo decides what is stale (mechinterp/models/inputs.py), exactly as `make models` does. A
trained model whose data is generated from code (shapes, digits; a `trainer:` entry without a
dataset, such as a transformer trained on generated sequences) is sent with the code
(cluster.py's shipping) and the zoo.yaml text; the worker trains it with the zoo's own build_one
and sends back its checkpoint and meta.json. The runner writes the checkpoint, then meta.json with
the inputs recomputed here (so staleness reads this machine's files) and where it was trained,
each atomically. Imported weights and datasets read from files are built here, as before: their
files are not shipped. `make figures CLUSTER=...` trains the stale models its figures read the same
way (build_on_cluster). It lives in the runner package because the engine never imports it.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from figures_src.runner.cluster import accepted_workers, connect, ship_code, shipped
from figures_src.runner.paths import MODELS_DIR, REPO_ROOT, SCRIPTS_DIR
from figures_src.runner.signals import INTERRUPTS, Interrupted, stop_signals_handled
from mechinterp.atomic_file import write_atomic
from mechinterp.models.config import is_imported, read_zoo
from mechinterp.models.inputs import PROCEDURAL_DATASETS, model_inputs, model_stale_reason

CPU_TRAINING_THREADS = 1   # the zoo's: one thread gives the same weights on every machine


def split_stale(zoo, models_dir: Path, names=None) -> tuple[list[str], list[str]]:
    """(stale models a worker can train, stale models built here) among names (default: all)."""
    remote, here = [], []
    for name in names or list(zoo.entries):
        if name in zoo.problems or model_stale_reason(name, zoo, models_dir) is None:
            continue
        entry = zoo.entries[name]
        generated = entry.get("dataset") in PROCEDURAL_DATASETS or ("trainer" in entry and "dataset" not in entry)
        travels = not is_imported(entry) and generated   # a trainer's sequences come from code too
        (remote if travels else here).append(name)
    return remote, here


def install_model(name: str, outcome: dict, zoo, models_dir: Path) -> str:
    """Write the trained model's checkpoint, then its meta.json; the line to print."""
    if "files" not in outcome:
        return f"zoo: cannot build {name!r} on the cluster: {outcome.get('refused') or outcome['error']}"
    folder = models_dir / name
    meta = json.loads(outcome["files"].pop("meta.json"))
    for file_name, data in outcome["files"].items():
        write_atomic(folder / file_name, data)
    meta["inputs"] = model_inputs(name, zoo, models_dir)
    meta["ran_on"] = outcome["ran_on"]
    write_atomic(folder / "meta.json", (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return f"zoo: {name} trained at {outcome['ran_on']['worker']} on {outcome['ran_on']['device']}"


def train_on_cluster(client, names: list[str], config: Path, models_dir: Path, device: str) -> dict[str, str]:
    """Train `names` on the cluster, installing each as it returns; {name: failure}."""
    from figures_src.runner.cluster import NoWorkersLeft, as_finished, outcome_of
    bundle = ship_code(client, SCRIPTS_DIR, models_dir)
    workers, refused = accepted_workers(client, bundle.code_id)
    for line in refused:
        print(line, file=sys.stderr)
    if not workers:
        raise SystemExit("error: no worker of the cluster can train models (see above)")
    zoo, failures = read_zoo(config), {}
    jobs = {name: {"code_id": bundle.code_id, "name": name, "zoo_text": config.read_text(),
                   "device": "cpu" if device == "auto" else device, "threads": CPU_TRAINING_THREADS}
            for name in names}
    futures = {client.submit(shipped("train_model_remotely"), job, key=f"model-{name}-{uuid.uuid4().hex[:8]}",
                             pure=False, workers=workers if refused else None): name for name, job in jobs.items()}
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
            failures[name] = f"zoo: cannot build {name!r} on the cluster: {stop}"
            print(failures[name], file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        raise Interrupted(list(futures.values()), 0, len(names) - len(futures)) from None
    return failures


def train_remote(names: list[str], config: Path, options) -> dict[str, str]:
    """Connect, train `names` on the cluster, close; {name: failure}."""
    client, started = connect(options.cluster, options.cluster_config)
    try:
        return train_on_cluster(client, names, config, options.models_dir, options.device)
    finally:
        client.close()
        if started is not None:
            started.close()


def build_on_cluster(config: Path, options, names: list[str]) -> dict[str, str]:
    """The figure runner's call (planning.build_stale_models with --cluster): the stale models
    among `names`, trained on the cluster where they can be, here otherwise; {name: failure}."""
    from mechinterp.models.zoo import train_zoo_models
    remote, here = split_stale(read_zoo(config), options.models_dir, names)
    failures = train_remote(remote, config, options) if remote else {}
    if here:
        failures.update(train_zoo_models(config, options.models_dir, here, options.device, options.jobs))
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make models CLUSTER=...", description=__doc__.split("\n")[0])
    parser.add_argument("--cluster", required=True, help="tcp://host:8786, or slurm")
    parser.add_argument("--cluster-config", type=Path, default=REPO_ROOT / "cluster.yaml")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    options = parser.parse_args(argv)
    config = options.models_dir / "zoo.yaml"
    remote, here = split_stale(read_zoo(config), options.models_dir, options.names)
    failures = {}
    with stop_signals_handled():
        try:
            if remote:
                failures = train_remote(remote, config, options)
        except Interrupted as stop:
            print(f"\n{stop.line().replace('figure', 'model')}", file=sys.stderr)
            return 130
    if here:   # imported weights and file datasets: built here by the zoo itself
        from mechinterp.models.zoo import main as zoo_main
        failures.update({"here": "see above"} if zoo_main(["--config", str(config), "--models-dir", str(options.models_dir),
                                                           "--names", *here, "--device", options.device]) else {})
    print(f"zoo: {len(remote) - len(set(failures) & set(remote))} trained on the cluster, "
          f"{len(here)} built here, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
