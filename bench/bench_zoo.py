"""Zoo benchmark: training time and throughput of every zoo model and total zoo training time.
Writes bench/results/zoo.json.

    .venv/bin/python -m bench.bench_zoo [--device cpu|cuda] [--names digits-mlp ...]

The models are the ones the device trains (a `devices: [cuda]` entry such as shapes-googlenet only
with --device cuda), the torchvision ones (shapes-resnet18) included: their training time is what
they add to a cold `make slides` and to the test suite, which trains the same zoo.

Trains the default zoo (models/zoo.yaml) from scratch into a temporary folder (the repo's
models/ is not touched), as `make models` would on a fresh checkout, and reports per model the
training images per second and seconds, then the wall time of the whole zoo (dataset
generation, training, evaluation, writing) and the process CPU time: when the machine is
shared, CPU time / wall time shows how much of it this run got. Then the same zoo again as `make
models` builds it, one model per core in its own process (the same weights), for its wall time. A short side measurement
compares 1 and 2 torch threads on one CNN in the same run (the zoo trains with 1 on the CPU).
The load average before and after says how busy the machine was.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from bench.common import write_results
from mechinterp.data import load_dataset
from mechinterp.device import pick_device, seed_everything
from mechinterp.models.architectures import SmallCNN
from mechinterp.models.training import TrainingSettings, train_classifier
from mechinterp.models.zoo import read_zoo, train_zoo, trains_on

CONFIG = Path(__file__).resolve().parent.parent / "models" / "zoo.yaml"


def thread_throughput(threads: int, device: torch.device, images: int = 1280) -> float:
    """Training images per second of SmallCNN for one short epoch with `threads` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seed_everything(0)
        data = load_dataset("shapes", "train")[:images]
        settings = TrainingSettings(epochs=1, batch_size=64, optimizer="sgd", learning_rate=0.1,
                                    batchnorm=True)
        return train_classifier(SmallCNN(), data, settings, device).images_per_second
    finally:
        torch.set_num_threads(previous)


def side_by_side_seconds(names: list[str], device: torch.device) -> dict:
    """Wall seconds of the same zoo built `make models`' way: one process per core, one model each."""
    jobs = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as models_dir:
        started = time.perf_counter()
        train_zoo(CONFIG, models_dir, names=names, device=device, force=True, jobs=jobs)
        return {"value": time.perf_counter() - started, "unit": "s", "jobs": jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--names", nargs="+", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    zoo = read_zoo(CONFIG)
    names = args.names or [name for name, entry in zoo.entries.items() if trains_on(entry, device)]
    figures = {"load average before": {"value": os.getloadavg()[0], "unit": "processes"}}
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as models_dir:
        wall, cpu = time.perf_counter(), time.process_time()
        metas = train_zoo(CONFIG, models_dir, names=names, device=device, force=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for name, meta in metas.items():      # a sequence model (the transformers) has steps, no images
        figures[f"{name} train time"] = {"value": meta["train_seconds"], "unit": "s"}
        if "images_per_second" in meta:
            figures[f"{name} throughput"] = {"value": meta["images_per_second"], "unit": "images/s"}
            figures[f"{name} test accuracy"] = {"value": meta["metrics"]["test_accuracy"], "unit": ""}
            figures[f"{name} epochs"] = {"value": meta["config"]["epochs"], "unit": "epochs"}
        else:
            figures[f"{name} steps"] = {"value": meta["config"].get("steps"), "unit": "steps"}
    for name in sorted(set(zoo.entries) - set(names)):
        figures[f"{name} not trained on {device.type}"] = {"value": zoo.entries[name].get("devices"), "unit": "devices"}
    figures["load average after"] = {"value": os.getloadavg()[0], "unit": "processes"}
    figures["total zoo time (wall)"] = {"value": wall, "unit": "s"}
    figures["total zoo time (process CPU)"] = {"value": cpu, "unit": "s"}
    figures["share of the CPU this run got"] = {"value": cpu / wall, "unit": "cores"}
    if device.type == "cpu":
        figures["total zoo time, built side by side (wall)"] = side_by_side_seconds(names, device)
    if device.type == "cpu":
        for threads in (1, 2):
            figures[f"SmallCNN throughput, {threads} thread(s)"] = {
                "value": thread_throughput(threads, device), "unit": "images/s"}
    figures["device"] = {"value": str(device), "unit": ""}
    write_results("zoo", figures)


if __name__ == "__main__":
    main()
