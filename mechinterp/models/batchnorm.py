"""Batch norm for training only: added after each conv while training, then folded into it.

    from mechinterp.models.batchnorm import add_batchnorm, fold_batchnorm
    add_batchnorm(model)      # conv1 -> Sequential(conv1, BatchNorm2d): trains about 2x faster
    ...train...
    fold_batchnorm(model)     # back to plain conv1 whose weights and bias include the norm

After folding, the model has exactly its architecture's modules and names, and in eval mode it
computes the same function as the model with batch norm (running statistics). The saved zoo
models therefore have no normalisation layers: the conv weights between two ReLUs are the whole
connection, which circuit analysis reads directly.
"""
from __future__ import annotations

import torch
from torch import nn


def _parent_and_attribute(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, attribute = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), attribute


def add_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every conv named in model.conv_layers by Sequential(conv, BatchNorm2d)."""
    for name in model.conv_layers:
        parent, attribute = _parent_and_attribute(model, name)
        conv = getattr(parent, attribute)
        norm = nn.BatchNorm2d(conv.out_channels).to(conv.weight.device)
        setattr(parent, attribute, nn.Sequential(conv, norm))  # keeps its place in forward order
    return model


@torch.no_grad()
def fold_conv_and_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """The conv equal to conv followed by the norm in eval mode."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                       conv.padding, conv.dilation, conv.groups, bias=True,
                       padding_mode=conv.padding_mode).to(conv.weight.device)
    folded.weight.copy_(conv.weight * scale[:, None, None, None])
    folded.bias.copy_((bias - norm.running_mean) * scale + norm.bias)
    return folded


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Undo add_batchnorm, folding each norm's statistics into its conv."""
    for name in model.conv_layers:
        parent, attribute = _parent_and_attribute(model, name)
        pair = getattr(parent, attribute)
        if isinstance(pair, nn.Sequential):
            setattr(parent, attribute, fold_conv_and_norm(pair[0], pair[1]))
    return model
