"""Device choice and determinism: the one place that picks where tensors live and seeds RNGs.

    from mechinterp.device import pick_device, seed_everything
    device = pick_device()            # cuda, then mps, then cpu
    device = pick_device("cpu")       # explicit choice wins
    seed_everything(0)                # python, numpy and torch (all devices)
    model_device(model)               # where a model's parameters live (cpu for none)
    with cpu_threads(device):         # one torch thread while small work runs on a CPU
        ...
    keep_freed_memory()               # a process that trains or renders on the CPU: once, at start

The environment variable MECHINTERP_DEVICE (cpu | cuda | mps | auto) overrides the automatic
choice; the figure runner's --device option sets it for the scripts it runs.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import random

import numpy as np
import torch
from torch import nn

DEVICE_ENV_VAR = "MECHINTERP_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to compute on: the request, else $MECHINTERP_DEVICE, else the best present."""
    choice = (requested or os.environ.get(DEVICE_ENV_VAR) or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {choice!r}: use cpu, cuda, mps or auto")
    if choice == "cuda" and not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) is built without CUDA: install a CUDA build (README, GPU)"
               if torch.version.cuda is None else f"torch {torch.__version__} sees no CUDA GPU on this machine "
               f"(none there, or no driver for CUDA {torch.version.cuda})")
        raise RuntimeError(f"device 'cuda' was requested but {why}; use DEVICE=cpu or DEVICE=auto "
                           "(--device cpu on a command line)")
    if choice == "mps" and not _mps_available():
        raise RuntimeError("device 'mps' was requested but this torch has no MPS backend")
    return torch.device(choice)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and every GPU); return a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def cpu_threads(device, count: int = 1):
    """Run the block with `count` torch intra-op threads when computing on the CPU.

    Small models and matrices gain nothing from more threads: on a shared CPU they only wait on
    each other (a PGD step on 200 images: 0.2 s with one thread, 0.8 s with two, on a busy 2-core
    box). On another device the block runs unchanged."""
    if torch.device(device).type != "cpu":
        yield
        return
    with torch_threads(count):
        yield


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with `count` torch intra-op threads, then restore the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEPT_BLOCK_BYTES = 32 * 1024 * 1024      # glibc's largest heap block (its mmap threshold's maximum)


@functools.cache
def c_library() -> ctypes.CDLL | None:
    """The process's C library (for mallopt, prctl), or None where ctypes cannot find one."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


@functools.cache
def keep_freed_memory() -> bool:
    """Keep the memory of freed tensors in the process instead of giving it back to the system.

    A training or rendering loop on the CPU frees and allocates the same activation-sized blocks
    every step. glibc returns blocks over its thresholds to the kernel at once, so every step
    page-faults its activations in again (50,000 faults a 16-step render of 64 images, a fifth
    of its time); with the blocks kept the pages are reused. The process stays at its peak size,
    which is what a figure worker or a training run reaches anyway. A no-op (False) where the C
    library is not glibc (macOS, musl): their allocators keep such blocks themselves or lack the
    knob. Called once per process by the figure worker, the zoo and the benchmarks."""
    libc = c_library()
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return all(libc.mallopt(option, value) == 1 for option, value in
               ((M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES), (M_TRIM_THRESHOLD, 2 ** 30),
                (M_TOP_PAD, 2 * KEPT_BLOCK_BYTES)))
