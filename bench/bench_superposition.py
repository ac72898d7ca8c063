"""Superposition benchmarks: batched toy models against a Python loop, the full phase diagram's wall
time, and SAE training throughput. Writes bench/results/superposition.json.

    .venv/bin/python -m bench.bench_superposition [--device cpu|cuda] [--quick]

Ratios are measured in one run, so both sides see the same machine load. Toy-model tensors are
small, so the CPU runs use one intra-op thread (more threads only wait on each other when the
CPU is shared); the thread count is recorded with the results.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench.common import write_results
from mechinterp.device import keep_freed_memory, pick_device
from mechinterp.superposition.experiments import TrainSettings, phase_diagram
from mechinterp.superposition.sae import ReluSAE, TopKSAE
from mechinterp.superposition.sae_training import train_sae
from mechinterp.superposition.synthetic import SparseDictionary
from mechinterp.superposition.toy_models import ToyModel, ToyModelSpec, train_toy_models

# The full profile of figures_src/superposition.py's phase diagram.
FULL_PHASE_GRID = 16
FULL_PHASE_TRAIN = TrainSettings(steps=1500, batch_size=256, lr=1e-2, lr_schedule="cosine", replicas=4)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def intro_spec(n_instances: int) -> ToyModelSpec:
    """The paper's intro setting: n=5, m=2, importance 0.9**i, densities from 1 to 1/20."""
    return ToyModelSpec(5, 2, 20 ** -torch.linspace(0, 1, n_instances), 0.9 ** torch.arange(5.0))


def toy_rate_batched(n_instances: int, steps: int, device) -> float:
    """Instance-steps per second with every instance in one batched model."""
    model = ToyModel(intro_spec(n_instances), seed=0, device=device)
    train_toy_models(model, steps=10, seed=0)          # warm-up
    synchronise(device)
    start = time.perf_counter()
    train_toy_models(model, steps=steps, seed=0)
    synchronise(device)
    return n_instances * steps / (time.perf_counter() - start)


def toy_rate_loop(n_instances: int, steps: int, device) -> float:
    """Instance-steps per second training the same instances one model at a time."""
    spec = intro_spec(n_instances)
    singles = [ToyModelSpec(5, 2, spec.feature_probability[i:i + 1], spec.importance[i:i + 1])
               for i in range(n_instances)]
    train_toy_models(ToyModel(singles[0], device=device), steps=10)    # warm-up
    synchronise(device)
    start = time.perf_counter()
    for index, single in enumerate(singles):
        train_toy_models(ToyModel(single, seed=index, device=device), steps=steps, seed=index)
    synchronise(device)
    return n_instances * steps / (time.perf_counter() - start)


def phase_diagram_seconds(device, grid: int, settings: TrainSettings) -> float:
    start = time.perf_counter()
    phase_diagram(grid, grid, settings=settings, device=device)
    synchronise(device)
    return time.perf_counter() - start


def sae_rate(sae, data: SparseDictionary, batch_size: int, steps: int) -> float:
    """Training vectors per second (the data stream's cost included)."""
    log = train_sae(sae, data.stream(batch_size), steps=steps)
    return log.vectors_per_second


def main(argv=None) -> None:
    keep_freed_memory()                  # as the figure workers run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    scale = 0.2 if args.quick else 1.0
    steps = int(1000 * scale)
    batched = toy_rate_batched(64, steps, device)
    looped = toy_rate_loop(8, steps // 2, device)
    phase_settings = TrainSettings(**{**FULL_PHASE_TRAIN.__dict__, "steps": int(FULL_PHASE_TRAIN.steps * scale)})
    phase_seconds = phase_diagram_seconds(device, FULL_PHASE_GRID, phase_settings)
    data = SparseDictionary(n_features=512, d=64, feature_probability=0.01, seed=0, device=device)
    topk = sae_rate(TopKSAE(64, 512, k=8).to(device), data, 4096, int(200 * scale))
    relu = sae_rate(ReluSAE(64, 512, l1_coefficient=0.1).to(device), data, 4096, int(200 * scale))
    models = FULL_PHASE_GRID ** 2 * FULL_PHASE_TRAIN.replicas
    write_results("superposition", {
        "toy_instance_steps_per_s_batched_64": {"value": batched, "unit": "instance-steps/s"},
        "toy_instance_steps_per_s_python_loop": {"value": looped, "unit": "instance-steps/s"},
        "toy_batched_speedup": {"value": batched / looped, "unit": "x"},
        "phase_diagram_full_wall_time": {"value": phase_seconds, "unit": "s"},
        "phase_diagram_full_models": {"value": models, "unit": "models"},
        "phase_diagram_full_steps": {"value": phase_settings.steps, "unit": "steps"},
        "phase_diagram_instance_steps_per_s": {"value": models * phase_settings.steps / phase_seconds,
                                               "unit": "instance-steps/s"},
        "sae_topk_throughput_d64_512_latents": {"value": topk, "unit": "activations/s"},
        "sae_relu_throughput_d64_512_latents": {"value": relu, "unit": "activations/s"},
        "device": {"value": str(device), "unit": ""},
        "torch_threads": {"value": torch.get_num_threads(), "unit": ""},
    })


if __name__ == "__main__":
    main()
