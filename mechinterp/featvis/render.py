"""The optimisation loop: gradient ascent on a batch of images, image i maximising objective i.

    result = render(model, obj.channel("relu2", range(32)), steps=256, snapshot_steps=(0, 16, 64))
    result.images                    # (32, C, H, W) in [0, 1] on the CPU
    result.snapshots[16]             # the batch after 16 steps ("optimising random noise")
    result.objective_values          # (32,) score of each final image, without transforms

Each step: parameterisation -> images -> random transforms -> model (activations captured with
mechinterp.hooks.capture, graph kept; the pass ends after the last layer the objective reads) ->
objective scores -> loss = -sum -> Adam step on the image parameters only (the model's weights
get no gradient). Because the loss is a sum over images, Adam is elementwise and every image has
its own seeded start and transforms, a batch of N renders equals N single renders with the same
seeds, and one batched run visualises a whole layer.

Defaults are the "done properly" recipe: Fourier parameterisation, decorrelated colour, Lucid's
transform set. `RenderSettings.naive()` is plain pixels with nothing else (it "cheats").
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from mechinterp.device import model_device
from mechinterp.models.describe import image_input_shape
from mechinterp.featvis import transforms as transforms_module
from mechinterp.featvis.objectives import INPUT, Objective
from mechinterp.featvis.parameterisations import ImageParameterisation
from mechinterp.hooks import (LayerNotFoundError, capture, forward_until_stopped, get_module, last_call,
                              stop_after)


@dataclass
class RenderSettings:
    """How to parameterise and transform; the pieces the regularisation comparison varies."""
    fourier: bool = True
    decorrelate: bool = True
    transforms: str | Callable = "standard"      # "standard", "jitter", "none" or a callable
    learning_rate: float = 0.05
    init_sd: float = 0.01
    channels_last: bool | None = None             # None: on the CPU (see model_memory_format)

    @classmethod
    def naive(cls, learning_rate: float = 0.05) -> "RenderSettings":
        return cls(fourier=False, decorrelate=False, transforms="none", learning_rate=learning_rate)


@dataclass
class RenderResult:
    images: torch.Tensor                              # (B, C, H, W) in [0, 1], CPU
    objective_values: torch.Tensor                    # (B,) on the final, untransformed images
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)   # mean score per step (with transforms)
    seeds: list[int] = field(default_factory=list)


class Adam:
    """Adam (Kingma and Ba 2015) on the image parameters: torch.optim.Adam(fused=True)'s update.

    It calls the fused kernel that torch.optim.Adam(fused=True) calls (one pass over the
    parameters on the CPU and on CUDA, three times faster than the step written out in torch ops)
    without torch.optim, whose first import in a process loads torch._dynamo (about 4 s, most of a
    quick figure). The update is elementwise, which is why image i of a batch evolves exactly as it
    would alone."""

    def __init__(self, parameters, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.parameters, self.lr, self.betas, self.eps = list(parameters), lr, betas, eps
        self.first_moments = [torch.zeros_like(p) for p in self.parameters]
        self.second_moments = [torch.zeros_like(p) for p in self.parameters]
        self.steps = [torch.zeros((), device=p.device) for p in self.parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [state for state in zip(self.parameters, self.first_moments, self.second_moments, self.steps)
                if state[0].grad is not None]
        if not live:
            return
        parameters, first_moments, second_moments, steps = (list(column) for column in zip(*live))
        torch._foreach_add_(steps, 1)           # the kernel reads the count; torch.optim adds it first too
        torch._fused_adam_(parameters, [p.grad for p in parameters], first_moments, second_moments, [], steps,
                           lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0,
                           eps=self.eps, amsgrad=False, maximize=False)


def model_input_shape(model: nn.Module, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """(C, H, W) from the argument, else the model's `input_shape` attribute (zoo models have it)."""
    shape = image_input_shape(model, "feature visualisation of pixels", image_shape)
    if shape is None:
        zoo_name = getattr(model, "zoo_name", None)
        entry = f"zoo entry {zoo_name!r}" if zoo_name else "model's zoo entry"
        raise ValueError(f"{type(model).__name__} does not say what size of image it takes: add "
                         f"`input_shape: [C, H, W]` (e.g. [3, 32, 32]) to the {entry} in "
                         "models/zoo.yaml (a model built in code: set model.input_shape = (C, H, W))")
    return tuple(int(s) for s in shape)


def model_channels(model: nn.Module) -> int | None:
    """The channels the model takes: its input_shape's, else its first conv's, else None (unknown)."""
    shape = getattr(model, "input_shape", None)
    if shape is not None and len(shape) == 3:   # [C, H, W]; a model of vectors [D] has none
        return int(shape[0])
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first_conv.in_channels if first_conv is not None else None


def check_start_channels(model: nn.Module, shape: Sequence[int], fix: str) -> None:
    """A start image of other channels than the model takes is one clear error, not torch's."""
    channels = model_channels(model)
    if channels is not None and shape[-3] != channels:
        taken = tuple(getattr(model, "input_shape", None) or (channels, "H", "W"))
        raise ValueError(f"the start image has shape {tuple(shape)}, {shape[-3]} channels, but the model "
                         f"takes {channels}-channel images {taken}: {fix}")


def check_layers(model: nn.Module, objective: Objective) -> list[str]:
    """The model layers the objective reads; a missing one is an error naming the objective."""
    layers = sorted(objective.layers - {INPUT})
    for layer in layers:
        try:
            get_module(model, layer)
        except LayerNotFoundError as error:
            raise LayerNotFoundError(f"objective {objective.description} reads a layer the model "
                                     f"does not have: {error}") from None
    return layers


def build_transform(setting: str | Callable, image_size: int) -> Callable:
    if callable(setting):
        return setting
    builders = {"standard": transforms_module.standard_transforms,
                "jitter": transforms_module.jitter_only,
                "none": lambda size: transforms_module.no_transforms}
    if setting not in builders:
        raise ValueError(f"unknown transforms {setting!r}: use one of {sorted(builders)} or a callable")
    return builders[setting](image_size)


def per_image_seeds(seed: int | Sequence[int], batch_size: int) -> list[int]:
    """An int seed gives image i the seed `seed + i`; a sequence is used as is."""
    seeds = [seed + i for i in range(batch_size)] if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != batch_size:
        raise ValueError(f"got {len(seeds)} seeds for a batch of {batch_size} images")
    return seeds


def raise_if_not_finite(scores: torch.Tensor, step: int, objective: Objective, lr: float) -> None:
    bad = (~torch.isfinite(scores)).nonzero().flatten().tolist()
    raise FloatingPointError(
        f"feature visualisation diverged at step {step}: objective {objective.description} is "
        f"{scores[bad[0]].item() if bad else 'not finite'} for images {bad[:10]}. Check that the model "
        f"gives finite outputs on ordinary inputs, lower the learning rate (now {lr}), or add an l2 penalty.")


def warn_about_images_without_gradient(parameters: list[torch.Tensor], objective: Objective) -> None:
    """A unit that is zero on the start image (a ReLU off everywhere) gives no gradient: say so."""
    gradient_size = sum(p.grad.flatten(1).abs().sum(1) for p in parameters if p.grad is not None)
    stuck = (torch.as_tensor(gradient_size) == 0).nonzero().flatten().tolist()
    if stuck:
        warnings.warn(f"objective {objective.description} has zero gradient for images {stuck[:10]} "
                      f"({len(stuck)} in all): the unit is off on the start image, so these images will "
                      "not change. Visualise the layer before its ReLU (e.g. the conv layer) instead.",
                      stacklevel=3)


FLAT_SPREAD = 0.01   # pixel standard deviation in [0, 1] below which an image shows nothing


def warn_if_flat(images: torch.Tensor, objective: Objective, steps: int) -> None:
    """Final images that stayed flat (near one grey: the start, or the l2 penalty's constant) would
    be blank panels on a slide: say which, and the usual causes."""
    spread = images.flatten(1).std(dim=1)
    flat = (spread < FLAT_SPREAD).nonzero().flatten().tolist()
    if flat:
        warnings.warn(f"objective {objective.description}: images {flat[:10]} ({len(flat)} of "
                      f"{len(images)}) are flat (pixel spread {spread[flat[0]].item():.2g} < {FLAT_SPREAD}) "
                      f"after {steps} steps, a blank panel. The penalties (an l2 or total-variation weight) "
                      "outweigh the objective at this layer's activation scale, or the steps or learning "
                      "rate are too few: lower the penalty weight, or render with the default "
                      "RenderSettings (Fourier, decorrelated, transformed)", stacklevel=3)


def model_memory_format(model: nn.Module, images: torch.Tensor, preprocess: Callable | None,
                        channels_last: bool | None) -> torch.memory_format:
    """The layout to feed the model: channels_last on the CPU, where oneDNN's convolutions and max
    pooling run several times faster in it, unless the model cannot take it (one that calls .view on
    its activations fails on a channels_last tensor: a one-image trial forward finds out)."""
    wanted = images.device.type == "cpu" if channels_last is None else channels_last
    if not wanted or images.dim() != 4:
        return torch.contiguous_format
    trial = images[:1].detach().contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            model(preprocess(trial) if preprocess else trial)
    except RuntimeError:
        return torch.contiguous_format
    return torch.channels_last


def stop_point(model: nn.Module, layers: list[str], images: torch.Tensor,
               preprocess: Callable | None) -> tuple[str, int] | None:
    """Where each forward pass may end: after the last call of the last layer the objective reads
    (hooks.last_call, on a one-image trial pass); nothing later feeds the objective, and for an
    early layer of a large model the rest is most of the pass."""
    trial = images[:1].detach()
    with torch.no_grad():
        return last_call(model, layers, lambda: model(preprocess(trial) if preprocess else trial))


def evaluate(model: nn.Module, objective: Objective, images: torch.Tensor,
             preprocess: Callable | None = None) -> torch.Tensor:
    """Scores of `images` under the objective, without transforms or gradients."""
    layers = check_layers(model, objective)
    with torch.no_grad(), capture(model, layers) as activations:
        model(preprocess(images) if preprocess else images)
        return objective({**activations, INPUT: images}).detach()


def default_image(model: nn.Module, settings: "RenderSettings", seeds: list[int],
                  image_shape: Sequence[int] | None) -> ImageParameterisation:
    """The parameterisation the settings ask for, shaped like the model's input, one image per seed."""
    channels, height, width = model_input_shape(model, image_shape)
    return ImageParameterisation((len(seeds), channels, height, width), fourier=settings.fourier,
                                 decorrelate=settings.decorrelate, sd=settings.init_sd, seeds=seeds)


def ascent_step(model, objective, image, transform, random, preprocess, activations,
                memory_format=torch.contiguous_format) -> torch.Tensor:
    """Forward the transformed batch and return each image's score (graph kept for backward)."""
    images = image()
    shown = transform(images, random).contiguous(memory_format=memory_format)
    forward_until_stopped(model, preprocess(shown) if preprocess else shown)
    return objective({**activations, INPUT: images})


def render(model: nn.Module, objective: Objective, steps: int = 256, batch_size: int | None = None,
           settings: RenderSettings | None = None, seed: int | Sequence[int] = 0,
           snapshot_steps: Sequence[int] = (), image: ImageParameterisation | None = None,
           image_shape: Sequence[int] | None = None, preprocess: Callable | None = None,
           progress: bool = True) -> RenderResult:
    """Optimise a batch of images so that image i maximises objective i (see the module docstring).

    batch_size defaults to the objective's per-image target count, else 1. `image` overrides the
    parameterisation (e.g. ImageParameterisation.from_images(photo) to start from a photograph)."""
    settings = settings or RenderSettings()
    layers = check_layers(model, objective)
    batch_size = batch_size or (image.shape[0] if image is not None else objective.batch_size or 1)
    seeds = per_image_seeds(seed, batch_size)
    if image is not None:
        check_start_channels(model, image.shape, "build it from images of that many channels "
                             "(mechinterp.data.fit_images(images, model.input_shape))")
    image = image if image is not None else default_image(model, settings, seeds, image_shape)
    image = image.to(model_device(model))
    transform = build_transform(settings.transforms, max(image.shape[-2:]))
    random = transforms_module.PerImageRandom(seeds)
    parameters = list(image.parameters())
    optimiser = Adam(parameters, lr=settings.learning_rate)
    result = RenderResult(images=torch.empty(0), objective_values=torch.empty(0), seeds=seeds)
    with torch.no_grad():
        start = image()
    memory_format = model_memory_format(model, start, preprocess, settings.channels_last)
    stop = stop_point(model, layers, start.contiguous(memory_format=memory_format), preprocess)
    if 0 in snapshot_steps:
        result.snapshots[0] = start.cpu()
    # capture's hooks first: the stop hook on the same layer runs after the activation is kept
    with capture(model, layers, detach=False) as activations, stop_after(model, *(stop or ())):
        for step in tqdm(range(1, steps + 1), desc="feature visualisation", disable=not progress, leave=False):
            optimiser.zero_grad()
            scores = ascent_step(model, objective, image, transform, random, preprocess, activations,
                                 memory_format)
            mean_score = scores.detach().mean().item()     # the step's one device sync
            if not math.isfinite(mean_score):
                raise_if_not_finite(scores.detach(), step, objective, settings.learning_rate)
            (-scores.sum()).backward(inputs=parameters)
            if step == 1:
                warn_about_images_without_gradient(parameters, objective)
            optimiser.step()
            result.history.append(mean_score)
            if step in snapshot_steps:
                result.snapshots[step] = image().detach().cpu()
    with torch.no_grad():
        final = image()
    result.objective_values = evaluate(model, objective, final, preprocess).cpu()
    result.images = final.cpu()
    warn_if_flat(result.images, objective, steps)
    return result
