"""Checking what the user asked for against what a layer has: unit indices, shapes, module types.

The other circuits modules and attribution.gradients call these so that every bad layer name,
unit index or shape gives one message that says what was asked, what exists, and what to do:

    shape = layer_output_shape(model, "relu2", images[:1])   # (C, H, W) of one example
    units = check_units([3, 40], shape[0], "relu2")          # ValueError: unit 40 out of range
    conv = module_of_type(model, "conv2", nn.Conv2d)         # TypeError if "conv2" is a ReLU
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mechinterp.hooks import get_module, layer_names, run_with_cache


def module_of_type(model: nn.Module, name: str, kind: type | tuple[type, ...]) -> nn.Module:
    """The submodule `name`, checked to be of the given type (clear errors otherwise)."""
    module = get_module(model, name)
    if not isinstance(module, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        options = ", ".join(repr(n) for n in layer_names(model, kinds)) or "none"
        raise TypeError(f"layer {name!r} is a {type(module).__name__}, not a {wanted}; "
                        f"the {wanted} layers of {type(model).__name__} are: {options}")
    return module


def layer_output_shape(model: nn.Module, layer: str, example: torch.Tensor) -> tuple[int, ...]:
    """Shape of `layer`'s output for one example (batch dimension dropped)."""
    get_module(model, layer)  # the clear error for a bad name comes before any forward pass
    _, activations = run_with_cache(model, example[:1], [layer])
    if layer not in activations:
        raise RuntimeError(f"layer {layer!r} did not run in the forward pass of "
                           f"{type(model).__name__}: pick a layer the forward pass uses")
    return tuple(activations[layer].shape[1:])


def check_units(units: Sequence[int] | None, count: int, layer: str) -> list[int]:
    """The unit indices as a list (all units if None); errors name the layer and its size."""
    if units is None:
        return list(range(count))
    checked = [int(u) for u in units]
    bad = [u for u in checked if not 0 <= u < count]
    if bad:
        raise ValueError(f"unit {bad[0]} is out of range: layer {layer!r} has {count} units "
                         f"(channels 0..{count - 1})")
    return checked


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor,
                     skip_batch: bool = True) -> None:
    """Raise a ValueError naming both tensors when their shapes (minus batch) differ."""
    shape_a, shape_b = (a.shape[1:], b.shape[1:]) if skip_batch else (a.shape, b.shape)
    if shape_a != shape_b:
        what = "per-example shape" if skip_batch else "shape"
        raise ValueError(f"{name_a} has {what} {tuple(shape_a)} but {name_b} has "
                         f"{tuple(shape_b)}; they must match")
