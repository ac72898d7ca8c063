"""Controls that say how much of a measurement comes from training: the same architecture with
fresh random weights.

    fresh = randomly_initialised(model, seed=3)    # a new model; `model` and the global RNG untouched

The copy is re-initialised by each module's own reset_parameters (PyTorch's default
initialisation) in module order, inside a forked RNG, so a figure that asks for a control does not
change the random numbers drawn after it.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def randomly_initialised(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of `model` with every parameterised module re-initialised from `seed`, in
    eval mode on the same device. The global RNG state is the same afterwards as before."""
    fresh = copy.deepcopy(model)
    devices = [p.device for p in fresh.parameters() if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=sorted({d.index or 0 for d in devices})):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh.eval()
