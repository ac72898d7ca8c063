"""Attribution: how much each input pixel (or each unit of a layer) is credited for an output.

    grads = saliency(model, images, target=labels)                 # d output / d input
    gxi = gradient_times_input(model, images, target=labels)
    ig = integrated_gradients(model, images, target=labels, baseline=None, steps=64,
                              rule="gausslegendre", internal_batch_size=512)
    ig.attributions, ig.completeness_gap                            # gap -> 0 as steps grow
    layer_ig = layer_integrated_gradients(model, images, "relu2", target=labels)
    change, mean_gradient = layer_path_gradients(model, images, "relu2", target=labels)

Integrated gradients (Sundararajan et al. 2017) integrate the gradient along the straight path
from a baseline x' to the input x:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i(x' + a (x - x')) da

By the fundamental theorem of calculus the attributions sum to F(x) - F(x') (completeness);
the completeness gap, sum(IG) - (F(x) - F(x')), measures the error of the quadrature rule.
Rules: riemann_left, riemann_right, riemann_middle and gausslegendre are Captum's rules of the
same names (same nodes, same weights); trapezoid is the textbook trapezoid rule (nodes 0..1,
weights 1/(n-1) with halved ends). Captum's "riemann_trapezoid" weights those nodes 1/n, so its
weights sum to (n-1)/n and its IG is (n-1)/n of ours; we do not offer it under Captum's name.

Layer integrated gradients do the same in the activation space of one layer: the layer's
output is replaced (through mechinterp.hooks.intervene) by points on the path from its value
on the baseline to its value on the input. layer_path_gradients returns the two factors of that
product, the layer's change and the path-averaged gradient, for projections on directions
(tcav.concept_attribution).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mechinterp.circuits.units import check_same_shape
from mechinterp.device import model_device
from mechinterp.hooks import intervene, run_with_cache

RULES = ("riemann_left", "riemann_right", "riemann_middle", "trapezoid", "gausslegendre")


def quadrature(rule: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes in [0, 1] and their weights (float64) for integrating over the path."""
    if rule == "riemann_trapezoid":
        raise ValueError("rule 'riemann_trapezoid' is Captum's trapezoid, whose weights sum to "
                         "(n-1)/n; use 'trapezoid', the textbook rule (its IG is n/(n-1) of Captum's)")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if steps < (1 if rule == "gausslegendre" else 2):
        raise ValueError(f"{rule} needs at least {1 if rule == 'gausslegendre' else 2} steps, got {steps}")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.tensor(0.5 * (nodes + 1)), torch.tensor(0.5 * weights)
    if rule == "trapezoid":
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return torch.linspace(0, 1, steps, dtype=torch.float64), weights
    offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[rule]
    nodes = (torch.arange(steps, dtype=torch.float64) + offset) / steps
    return nodes, torch.full((steps,), 1.0 / steps, dtype=torch.float64)


def select_output(output: torch.Tensor, target) -> torch.Tensor:
    """One scalar per example: output[:, target] (int or per-example tensor) or a 1-D output."""
    if target is None:
        if output.dim() != 1 and not (output.dim() == 2 and output.shape[1] == 1):
            raise ValueError(f"the model gives {math.prod(output.shape[1:])} outputs per example: pass target= "
                             "(a class index, or one index per example)")
        return output.reshape(len(output))
    target = torch.as_tensor(target, device=output.device).long()
    if target.dim() == 0:
        target = target.expand(len(output))
    if len(target) != len(output):
        raise ValueError(f"target has {len(target)} entries for {len(output)} examples")
    if target.max() >= output.shape[1] or target.min() < 0:
        raise ValueError(f"target class {int(target.max())} is out of range: the model has "
                         f"{output.shape[1]} outputs")
    return output.gather(1, target[:, None])[:, 0]


def _input_gradient(model: nn.Module, inputs: torch.Tensor, target) -> torch.Tensor:
    inputs = inputs.detach().requires_grad_(True)
    scores = select_output(model(inputs), target)
    return torch.autograd.grad(scores.sum(), inputs)[0]


def saliency(model: nn.Module, inputs: torch.Tensor, target=None,
             absolute: bool = False) -> torch.Tensor:
    """The gradient of the target output with respect to the input (Simonyan et al. 2014)."""
    gradient = _input_gradient(model, inputs, target)
    return gradient.abs() if absolute else gradient


def gradient_times_input(model: nn.Module, inputs: torch.Tensor, target=None) -> torch.Tensor:
    """Gradient times input: a first-order estimate of each pixel's contribution."""
    return _input_gradient(model, inputs, target) * inputs.detach()


@dataclass
class IGResult:
    """Integrated-gradient attributions and how well they sum to the output difference."""
    attributions: torch.Tensor       # same shape as the inputs (or the layer's output)
    output_difference: torch.Tensor  # F(x) - F(baseline), (N,)
    completeness_gap: torch.Tensor   # sum(attributions) - (F(x) - F(baseline)), (N,)

    @property
    def relative_gap(self) -> torch.Tensor:
        """|gap| / |F(x) - F(baseline)|, per example."""
        return self.completeness_gap.abs() / self.output_difference.abs().clamp(min=1e-12)


def _steps_per_batch(internal_batch_size: int | None, examples: int, steps: int) -> int:
    if internal_batch_size is None:
        return steps
    if internal_batch_size < 1:
        raise ValueError(f"internal_batch_size must be positive, got {internal_batch_size}")
    return max(1, internal_batch_size // examples)


def _path_integral(forward, start: torch.Tensor, end: torch.Tensor, target, steps: int,
                   rule: str, internal_batch_size: int | None) -> torch.Tensor:
    """sum_k w_k * d F(start + a_k (end - start)) / d point, for each example (float32/64)."""
    nodes, weights = quadrature(rule, steps)
    per_batch = _steps_per_batch(internal_batch_size, len(end), steps)
    total = torch.zeros_like(end)
    for first in range(0, steps, per_batch):
        alphas = nodes[first:first + per_batch].to(end.device, end.dtype)
        scale = alphas.view(-1, 1, *([1] * (end.dim() - 1)))
        points = (start.unsqueeze(0) + scale * (end - start).unsqueeze(0)).flatten(0, 1)
        points = _fast_layout(points).requires_grad_(True)
        scores = select_output(forward(points, len(alphas)), _repeat_target(target, len(alphas)))
        gradients = torch.autograd.grad(scores.sum(), points)[0].view(len(alphas), *end.shape)
        step_weights = weights[first:first + per_batch].to(end.device, end.dtype)
        total += torch.einsum("k,k...->...", step_weights, gradients)
    return total


def _fast_layout(points: torch.Tensor) -> torch.Tensor:
    """Images in channels-last memory: convolutions run about a third faster on the CPU."""
    return points.contiguous(memory_format=torch.channels_last) if points.dim() == 4 else points


def _repeat_target(target, repeats: int):
    if target is None:
        return None
    target = torch.as_tensor(target)
    return target if target.dim() == 0 else target.repeat(repeats)


def _scores(model: nn.Module, inputs: torch.Tensor, target) -> torch.Tensor:
    with torch.no_grad():
        return select_output(model(inputs), target)


def integrated_gradients(model: nn.Module, inputs: torch.Tensor, target=None,
                         baseline: torch.Tensor | float | None = None, steps: int = 50,
                         rule: str = "gausslegendre",
                         internal_batch_size: int | None = None) -> IGResult:
    """Integrated gradients of the target output, from `baseline` (default zeros) to inputs.

    inputs: a batch, (N, ...) as the model takes it (one image: image[None]). internal_batch_size
    bounds how many path points go through the model at once."""
    check_batched(model, inputs)
    inputs = inputs.detach()
    baseline = _baseline_like(baseline, inputs)
    integral = _path_integral(lambda points, _: model(points), baseline, inputs, target,
                              steps, rule, internal_batch_size)
    attributions = (inputs - baseline) * integral
    difference = _scores(model, inputs, target) - _scores(model, baseline, target)
    gap = attributions.flatten(1).sum(1) - difference
    return IGResult(attributions, difference, gap)


def check_batched(model: nn.Module, inputs: torch.Tensor) -> None:
    """One example where a batch is due (a model that states its input_shape tells them apart) is
    one message, not torch's complaint about channels from deep inside the model."""
    shape = getattr(model, "input_shape", None)
    if shape is not None and inputs.dim() == len(shape):
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} are one example of {type(model).__name__}'s "
                         f"{tuple(shape)}: pass a batch, e.g. inputs[None]")


def _baseline_like(baseline, inputs: torch.Tensor) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(inputs)
    if not isinstance(baseline, torch.Tensor):
        return torch.full_like(inputs, float(baseline))
    baseline = baseline.detach().to(inputs.device, inputs.dtype)
    if baseline.shape == inputs.shape[1:]:
        baseline = baseline.unsqueeze(0)
    try:
        return baseline.expand_as(inputs)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not match inputs of "
                         f"shape {tuple(inputs.shape)}; pass one baseline per input, one for "
                         "all, or a number") from None


def layer_path_gradients(model: nn.Module, inputs: torch.Tensor, layer: str, target=None,
                         baseline: torch.Tensor | float | None = None, steps: int = 50,
                         rule: str = "gausslegendre", internal_batch_size: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(change, mean gradient), both of the layer's shape: the layer's value on the inputs minus
    its value on the baseline, and d target / d layer averaged along the straight path between
    them (the layer's output replaced by each path point). Their product is the layer IG."""
    inputs = inputs.detach().to(model_device(model))
    baseline = _baseline_like(baseline, inputs)
    _, input_cache = run_with_cache(model, inputs, [layer])
    _, baseline_cache = run_with_cache(model, baseline, [layer])
    end, start = input_cache[layer], baseline_cache[layer]
    check_same_shape(f"layer {layer!r} on the inputs", end, "on the baseline", start, False)

    def forward_through_layer(points, repeats):
        with intervene(model, {layer: lambda _: points}):
            return model(inputs.repeat(repeats, *([1] * (inputs.dim() - 1))))

    mean_gradient = _path_integral(forward_through_layer, start, end, target, steps, rule,
                                   internal_batch_size)
    return end - start, mean_gradient


def layer_integrated_gradients(model: nn.Module, inputs: torch.Tensor, layer: str, target=None,
                               baseline: torch.Tensor | float | None = None, steps: int = 50,
                               rule: str = "gausslegendre",
                               internal_batch_size: int | None = None) -> IGResult:
    """Integrated gradients over the output of `layer`, on the path from the layer's value on
    the input baseline to its value on the inputs. Attributions have the layer's shape."""
    change, mean_gradient = layer_path_gradients(model, inputs, layer, target, baseline, steps,
                                                 rule, internal_batch_size)
    attributions = change * mean_gradient
    inputs = inputs.detach().to(attributions.device)
    baseline = _baseline_like(baseline, inputs)
    difference = _scores(model, inputs, target) - _scores(model, baseline, target)
    gap = attributions.flatten(1).sum(1) - difference
    return IGResult(attributions, difference, gap)
