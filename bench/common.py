"""Shared output for benchmarks: print a table of figures and write bench/results/<name>.json.

    from bench.common import write_results
    write_results("zoo", {"total_train_seconds": {"value": 93.2, "unit": "s"}})

Benchmarks measure and report; they never assert on time (the machine is noisy). Ratios are
measured within one run so both sides see the same load.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from mechinterp.atomic_file import write_atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    """Where the figures were measured: enough to tell a laptop from CI from a GPU box."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def write_results(name: str, figures: dict[str, dict]) -> Path:
    """Print the figures as a table and write them atomically to bench/results/<name>.json."""
    width = max((len(k) for k in figures), default=10)
    print(f"\n== bench: {name}")
    for key, figure in figures.items():
        value = figure["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown:>12} {figure.get('unit', '')}")
    payload = {"name": name, "figures": figures, "machine": machine_info(),
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = RESULTS_DIR / f"{name}.json"
    write_atomic(target, json.dumps(payload, indent=2))
    return target


def median_seconds(function, repeats: int = 5) -> float:
    """Median wall time of calling `function` (GPU work is waited for)."""
    import torch
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternate(first, second, repeats: int = 5) -> tuple[float, float]:
    """Median times of two functions, run alternately so both see the same machine load."""
    return tuple(alternate_all([first, second], repeats))


def alternate_all(functions, repeats: int = 5) -> list[float]:
    """Median times of each function, run in turn `repeats` times so all see the same load."""
    return [statistics.median(measured) for measured in alternate_rounds(functions, repeats)]


def alternate_rounds(functions, repeats: int = 5) -> list[list[float]]:
    """Each function's time in each of `repeats` rounds (one call of each, in turn, per round):
    a ratio taken within a round compares calls that saw the same load."""
    for function in functions:   # warm-up
        function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, measured in zip(functions, times):
            measured.append(median_seconds(function, 1))
    return times


def reference_cnn(device):
    """(model, label): the trained zoo's shapes-cnn-a if `make models` ran, else the same
    architecture with seeded initial weights, so a benchmark runs on a fresh clone too."""
    from mechinterp.device import seed_everything
    from mechinterp.models.architectures import SmallCNN
    if (Path("models") / "shapes-cnn-a").exists():
        from mechinterp.models.zoo import load_model
        return load_model("shapes-cnn-a", "models", device=device), "shapes-cnn-a (trained)"
    seed_everything(0)
    return SmallCNN(classes=8, width=16).to(device).eval(), "SmallCNN (untrained)"
