"""mechinterp.device: device choice (argument, environment variable, automatic) and seeding."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mechinterp.device import DEVICE_ENV_VAR, pick_device, seed_everything


def test_explicit_cpu_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "auto")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("CPU") == torch.device("cpu")


def test_environment_variable_is_honoured(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert pick_device() == torch.device("cpu")


def test_automatic_choice_prefers_cuda_when_present(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    assert pick_device().type == expected
    assert pick_device("auto").type == expected


def test_unknown_device_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps or auto"):
        pick_device()


def test_cuda_request_without_cuda_says_what_to_do():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="--device cpu"):
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
