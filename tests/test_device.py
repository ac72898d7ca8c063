"""mechinterp.device: device choice (argument, environment variable, automatic), seeding, where a
model lives and the CPU thread count for small work."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mechinterp.device import DEVICE_ENV_VAR, cpu_threads, model_device, pick_device, seed_everything


def test_explicit_cpu_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "auto")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("CPU") == torch.device("cpu")


def test_environment_variable_is_honoured(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert pick_device() == torch.device("cpu")


def _present(monkeypatch, cuda: bool, mps: bool):
    """Make torch report which accelerators exist (no tensor is put on them)."""
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_automatic_choice_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _present(monkeypatch, cuda, mps)
    assert pick_device().type == expected
    assert pick_device("auto").type == expected


def test_an_explicit_cpu_is_kept_when_a_gpu_is_present(monkeypatch):
    _present(monkeypatch, cuda=True, mps=True)
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert pick_device().type == "cpu"


def test_unknown_device_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps or auto"):
        pick_device()


def test_cuda_request_without_cuda_says_what_to_do(monkeypatch):
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)     # a CUDA build on a machine without a GPU
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(RuntimeError, match=r"sees no CUDA GPU on this machine \(none there, or no driver for "
                       r"CUDA 13.0\); use DEVICE=cpu or DEVICE=auto"):
        pick_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", None)                    # a CPU-only build
    with pytest.raises(RuntimeError, match=r"is built without CUDA: install a CUDA build"):
        pick_device("cuda")


def _draws(generator: torch.Generator):
    return (random.random(), float(np.random.rand()), torch.rand(3).tolist(),
            torch.rand(2, generator=generator).tolist())


def test_seed_everything_repeats_every_generator():
    first = _draws(seed_everything(123))
    second = _draws(seed_everything(123))
    other = _draws(seed_everything(124))
    assert first == second
    assert all(a != b for a, b in zip(first, other))


def test_seed_everything_makes_model_initialisation_repeatable():
    seed_everything(7)
    first = torch.nn.Conv2d(3, 4, 3).weight.detach().clone()
    seed_everything(7)
    assert torch.equal(first, torch.nn.Conv2d(3, 4, 3).weight)


def test_model_device_is_where_the_parameters_are():
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")          # no parameters at all
    meta = torch.nn.Linear(2, 2, device="meta")
    assert model_device(meta) == torch.device("meta")


def test_cpu_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    with cpu_threads("cpu", target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(KeyError), cpu_threads(torch.device("cpu"), target):
        raise KeyError("the count is restored when the block raises too")
    assert torch.get_num_threads() == before


def test_cpu_threads_leaves_other_devices_alone():
    before = torch.get_num_threads()
    with cpu_threads("cuda", before + 1):       # only the device's type is read
        assert torch.get_num_threads() == before


PAGE_FAULT_PROBE = """
import resource, sys, torch
from mechinterp.device import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.set_num_threads(1)      # as a figure worker runs; with more, which thread's arena frees what varies
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                          torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU())
images = torch.rand(64, 3, 32, 32, requires_grad=True)
def step():                                     # a render step's shape: forward, backward to the input
    net(images).sum().backward(inputs=[images])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(60):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> tuple[str, int]:
    import os
    import subprocess
    import sys
    # glibc's default mmap threshold grows with what the process has freed so far, so how much a
    # loop faults without keep_freed_memory varied from run to run (1,000 to 300,000 here); its
    # starting value, pinned, is the default a fresh worker begins with, every run alike
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": "131072"} if mode == "default" else {})}
    out = subprocess.run([sys.executable, "-c", PAGE_FAULT_PROBE, mode], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    return out[0], int(out[1])


def test_kept_freed_memory_stops_a_loop_from_faulting_its_temporaries_in_again():
    """glibc gives freed activation-sized blocks back to the kernel, so each forward and backward
    faults thousands of pages in anew; with keep_freed_memory they are reused (measured in fresh
    processes: the policy is global)."""
    kept, faults_kept = _page_faults("keep")
    _, faults_default = _page_faults("default")
    assert kept == "True"                                   # this machine's libc is glibc
    assert faults_default > 60 * 500                        # about 11,000 a step here
    assert faults_kept < 5000                               # once, as the heap first grows
