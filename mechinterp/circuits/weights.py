"""Reading circuits off the weights: which units of one layer build a unit of the next, and how.

Between two conv layers, unit a (an input channel) reaches unit b (an output channel) through
a small spatial kernel, `conv.weight[b, a]`. Where it is positive, activity of a at that offset
excites b; where negative, it inhibits b (Zoom In, curve circuits). PyTorch convolutions are
cross-correlations, so the kernel is shown as it is stored: entry (i, j) weighs the input at
offset (i - radius, j - radius) from b's position.

    kernel = unit_kernel(model, "conv2", source_unit=3, target_unit=7)    # (kh, kw)
    positive, negative = split_signs(kernel)                               # both >= 0
    inputs = strongest_inputs(model, "conv2", target_unit=7, count=4)      # ranked InputStrength
    circuit = unit_circuit(model, "conv2", target_unit=7, count=4)         # kernels + ranking
    expanded = chain_expanded_weights(conv_a, conv_b)                      # through linear steps
    factors = weight_nmf(conv2.weight, components=4)                       # structure of a layer

Expanded weights ("Visualizing Weights"): when the steps between two layers are linear
(1x1 bottlenecks, convolutions without a nonlinearity between them, residual additions), the
composite map is itself a convolution and its kernel can be read like a direct one. We read it
as the response of the linear map to a single active pixel (an impulse), which works for any
stride-1 linear map given as a function, with biases removed by subtracting the map of zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from mechinterp.circuits.units import check_units, module_of_type
from mechinterp.device import model_device
from mechinterp.hooks import hooked
from mechinterp.models.batchnorm import fold_conv_and_norm

SIGNS = ("positive", "negative", "absolute")


def conv_weight(model: nn.Module, layer: str) -> torch.Tensor:
    """The weight (out, in, kh, kw) of the Conv2d called `layer`, detached; where a BatchNorm2d
    reads the conv's output (torchvision's conv1 -> bn1), that norm is folded in with its running
    statistics, so the kernel is the whole linear step the model takes in eval mode."""
    conv = module_of_type(model, layer, nn.Conv2d)
    norm = following_batchnorm(model, layer)
    if norm is None:
        return conv.weight.detach()
    return fold_conv_and_norm(conv, norm).weight.detach()


def following_batchnorm(model: nn.Module, layer: str) -> nn.BatchNorm2d | None:
    """The BatchNorm2d whose input is the output of conv `layer`, found in one forward pass on
    zeros of model.input_shape; None when the model has no batch norm (the zoo's CNNs fold theirs)."""
    norms = {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    shape = getattr(model, "input_shape", None)
    if not norms or shape is None:
        return None
    conv_output, found = [], []

    def after_conv(module, inputs, output):
        conv_output.append(output)          # kept alive, so no later tensor reuses its memory

    def before_norm(name):
        def check(module, inputs, output):
            if conv_output and not found and inputs[0].data_ptr() == conv_output[0].data_ptr():
                found.append(norms[name])
        return check

    with torch.no_grad(), hooked(model, {layer: after_conv, **{n: before_norm(n) for n in norms}}):
        model(torch.zeros(1, *shape, device=model_device(model)))
    return found[0] if found else None


def unit_kernel(model: nn.Module, layer: str, source_unit: int, target_unit: int) -> torch.Tensor:
    """The spatial kernel from input channel `source_unit` to output channel `target_unit`."""
    weight = conv_weight(model, layer)
    check_units([target_unit], weight.shape[0], f"{layer} (output channels)")
    check_units([source_unit], weight.shape[1], f"{layer} (input channels)")
    return weight[target_unit, source_unit].clone()


def split_signs(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive part, negative part) of a kernel, both >= 0: kernel = positive - negative."""
    return kernel.clamp(min=0), (-kernel).clamp(min=0)


@dataclass
class InputStrength:
    """How strongly one input unit reaches a target unit through its kernel."""
    unit: int
    score: float          # what the ranking sorted by (see strongest_inputs)
    excitation: float     # sum of the kernel's positive entries
    inhibition: float     # sum of the kernel's negative entries, as a positive number


def input_strengths(weight: torch.Tensor, target_unit: int) -> list[InputStrength]:
    """Excitation and inhibition of every input unit of one output unit (unsorted)."""
    kernels = weight[target_unit].flatten(1)               # (in, kh*kw)
    excitation = kernels.clamp(min=0).sum(1)
    inhibition = (-kernels).clamp(min=0).sum(1)
    return [InputStrength(unit, 0.0, float(e), float(i))
            for unit, (e, i) in enumerate(zip(excitation, inhibition))]


def strongest_inputs(model: nn.Module, layer: str, target_unit: int, count: int = 5,
                     sign: str = "positive") -> list[InputStrength]:
    """The `count` input units that most excite (or inhibit, or touch) `target_unit` of `layer`.

    sign="positive" ranks by total excitation, "negative" by total inhibition, "absolute" by
    the sum of absolute weights."""
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    weight = conv_weight(model, layer)
    check_units([target_unit], weight.shape[0], f"{layer} (output channels)")
    strengths = input_strengths(weight, target_unit)
    for strength in strengths:
        strength.score = {"positive": strength.excitation, "negative": strength.inhibition,
                          "absolute": strength.excitation + strength.inhibition}[sign]
    strengths.sort(key=lambda s: s.score, reverse=True)
    return strengths[:count]


@dataclass
class Circuit:
    """A target unit and its strongest inputs with their kernels, ready to draw."""
    layer: str
    target_unit: int
    excitatory: list[InputStrength]
    inhibitory: list[InputStrength]
    kernels: dict[int, torch.Tensor]     # input unit -> (kh, kw) kernel into the target

    def to_dict(self) -> dict:
        pick = lambda s: {"unit": s.unit, "excitation": s.excitation, "inhibition": s.inhibition}
        return {"layer": self.layer, "target_unit": self.target_unit,
                "excitatory": [pick(s) for s in self.excitatory],
                "inhibitory": [pick(s) for s in self.inhibitory]}


def unit_circuit(model: nn.Module, layer: str, target_unit: int, count: int = 4,
                 inhibitory_count: int = 2) -> Circuit:
    """The strongest excitatory and inhibitory inputs of a unit and their kernels."""
    excitatory = strongest_inputs(model, layer, target_unit, count, "positive")
    taken = {s.unit for s in excitatory}
    inhibitory = [s for s in strongest_inputs(model, layer, target_unit,
                                              count + inhibitory_count, "negative")
                  if s.unit not in taken][:inhibitory_count]
    kernels = {s.unit: unit_kernel(model, layer, s.unit, target_unit)
               for s in excitatory + inhibitory}
    return Circuit(layer, target_unit, excitatory, inhibitory, kernels)


def expanded_weights(linear_map: Callable[[torch.Tensor], torch.Tensor], in_channels: int,
                     radius: int, input_size: int | None = None, device=None) -> torch.Tensor:
    """The kernel (out, in, 2r+1, 2r+1) of a stride-1 linear (or affine) map between layers.

    linear_map takes activations (N, in_channels, S, S) and returns (N, out, S', S'), e.g.
    `lambda a: conv_b(conv_a(a))` or `lambda a: a + block(a)`; radius bounds how far an input
    pixel reaches. Errors if the map is not linear or reaches further than `radius`.
    device: where to run the map (default: that of a module's parameters, else the CPU)."""
    size = input_size or 4 * radius + 3
    if size % 2 == 0 or size < 2 * radius + 1:
        raise ValueError(f"input_size must be odd and at least 2*radius+1={2 * radius + 1}")
    device = device or _parameter_device(linear_map)
    centre = size // 2
    impulses = torch.zeros(in_channels, in_channels, size, size, device=device)
    impulses[torch.arange(in_channels), torch.arange(in_channels), centre, centre] = 1.0
    with torch.no_grad():
        zero = linear_map(torch.zeros(1, in_channels, size, size, device=device))
        responses = linear_map(impulses) - zero
        doubled = linear_map(2 * impulses) - zero
    _check_linear(responses, doubled)
    return _kernel_from_responses(responses, radius)


def _parameter_device(linear_map) -> torch.device:
    return model_device(linear_map) if isinstance(linear_map, nn.Module) else torch.device("cpu")


def _check_linear(responses: torch.Tensor, doubled: torch.Tensor) -> None:
    scale = responses.abs().max().clamp(min=1e-12)
    if (doubled - 2 * responses).abs().max() > 1e-4 * scale:
        raise ValueError("the map between the layers is not linear (a ReLU or pooling in the "
                         "path?); expanded weights exist only through linear steps")


def _kernel_from_responses(responses: torch.Tensor, radius: int) -> torch.Tensor:
    """Impulse responses (in, out, S', S') -> kernel (out, in, 2r+1, 2r+1) in weight orientation."""
    out_size = responses.shape[-1]
    if out_size < 2 * radius + 1 or responses.shape[-2] != out_size:
        raise ValueError(f"the map's output ({tuple(responses.shape[-2:])}) is smaller than the "
                         f"kernel it should hold (radius {radius}); pass a larger input_size")
    centre = out_size // 2
    window = responses[..., centre - radius:centre + radius + 1, centre - radius:centre + radius + 1]
    if (responses.abs().sum() - window.abs().sum()) > 1e-5 * responses.abs().sum().clamp(min=1e-12):
        raise ValueError(f"the map reaches further than radius {radius}; pass a larger radius")
    # the response to an impulse is the cross-correlation kernel mirrored in both axes
    return window.flip(-1, -2).transpose(0, 1).contiguous()


def chain_expanded_weights(*convs: nn.Conv2d) -> torch.Tensor:
    """Expanded kernel (out of last, in of first, k, k) of stride-1 convs applied in sequence."""
    for conv in convs:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"chain_expanded_weights takes nn.Conv2d modules, got {type(conv).__name__}")
        if conv.stride != (1, 1) or conv.groups != 1:
            raise ValueError(f"expanded weights need stride 1 and groups 1, {conv} has "
                             f"stride {conv.stride} and groups {conv.groups}")
    for first, second in zip(convs, convs[1:]):
        if first.out_channels != second.in_channels:
            raise ValueError(f"{first} gives {first.out_channels} channels but {second} takes "
                             f"{second.in_channels}")
    radius = sum((c.kernel_size[0] - 1) // 2 * c.dilation[0] for c in convs)
    chain = nn.Sequential(*convs)
    with torch.no_grad():
        return expanded_weights(chain, convs[0].in_channels, radius)


@dataclass
class WeightFactors:
    """NMF of a layer's weights: each output unit as a mix of a few signed input patterns."""
    unit_loadings: np.ndarray    # (out, components) >= 0
    factors: np.ndarray          # (components, in, kh, kw), signed: positive minus negative part
    reconstruction_error: float  # relative Frobenius error of the sign-split matrix


def weight_nmf(weight: torch.Tensor, components: int, seed: int = 0,
               max_iter: int = 1000) -> WeightFactors:
    """Factor a conv or linear weight with scikit-learn's NMF after splitting signs.

    Rows are output units; columns are [positive part, negative part] of every (input unit,
    position) weight, so the nonnegative factorisation keeps excitation and inhibition apart."""
    from sklearn.decomposition import NMF

    if weight.dim() not in (2, 4):
        raise ValueError(f"weight_nmf takes a Linear (out, in) or Conv2d (out, in, kh, kw) "
                         f"weight, got shape {tuple(weight.shape)}")
    if not 1 <= components <= min(weight.shape[0], weight[0].numel()):
        raise ValueError(f"components must be between 1 and {weight.shape[0]}, got {components}")
    flat = weight.detach().double().flatten(1).cpu().numpy()
    split = np.concatenate([np.clip(flat, 0, None), np.clip(-flat, 0, None)], axis=1)
    nmf = NMF(n_components=components, init="nndsvda", random_state=seed, max_iter=max_iter)
    loadings = nmf.fit_transform(split)
    half = flat.shape[1]
    signed = nmf.components_[:, :half] - nmf.components_[:, half:]
    error = float(np.linalg.norm(split - loadings @ nmf.components_) / np.linalg.norm(split))
    return WeightFactors(loadings, signed.reshape(components, *weight.shape[1:]), error)
