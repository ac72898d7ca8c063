"""Dataset examples: the real inputs that most activate each unit, and the patch each unit sees.

Feature visualisation shows what a unit *could* respond to; dataset examples show what it *does*
respond to in the data (Olah et al. 2017, "Dataset Examples"). Shown side by side they keep each
other honest. The dataset is streamed in batches and only a running top-k per unit is kept, so
memory stays bounded (units x (k + batch)) whatever the dataset size.

    top = top_activating_examples(model, "relu2", test.images, k=9)
    top.values[unit], top.indices[unit]        # (k,) activations and dataset indices, best first
    field = receptive_field(model, "relu2", test.images.shape[1:])
    crops = receptive_field_crops(test.images, top, field, unit)   # (k, C, size, size)
    deepest_layer_seen_whole(model, model.conv_layers, (3, 32, 32))  # a layer whose crops are not padding

statistic="max" ranks images by the unit's strongest position (the crop is taken there);
statistic="mean" ranks by the spatial mean, the quantity a channel objective maximises.

Near an edge a unit's receptive field runs past the image, and the crop must show something
there. A reader takes every pixel of a crop for data, so a fixed colour (the old mid-grey) draws
frames the dataset does not have: grey borders on MNIST, whose background is black. Where an
image has a background (most of its border one colour: 0 on MNIST, the flat colour of a shapes
image, white on a white page) the part outside is that colour, the per-channel median of its
border: it continues the image as its own margin does, needs no knowledge of the dataset or its
value range (a user's normalised data included), and the median ignores a stroke that touches the
edge. A photograph has no such margin: its border is scenery, and a flat block of its median
looks like part of the scene. There the part outside is a fine grey checkerboard (two tones
inside the image's own range), the usual sign for "no image here". Replicating or reflecting the
edge pixels would instead invent content. Every figure's crops (featvis, circuits, universality)
come from receptive_field_crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from mechinterp.device import model_device
from mechinterp.models.describe import image_input_shape
from mechinterp.hooks import capture, get_module, hooked

# Modules that act on each position independently: they leave the receptive field unchanged.
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout,
             nn.Dropout2d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class TopExamples:
    layer: str
    statistic: str
    values: torch.Tensor        # (units, k) best first
    indices: torch.Tensor       # (units, k) positions in the dataset
    positions: torch.Tensor     # (units, k, 2) (y, x) of the strongest position in the activation map



class NotSpatialError(ValueError):
    """A layer whose output has no image positions; `output` says what it is ("has shape (1, 16)")."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output

def batches_of(images, batch_size: int) -> Iterable[torch.Tensor]:
    """A tensor (or anything with .images) in slices; an iterable of batches or (x, y) pairs as is."""
    images = getattr(images, "images", images)
    if isinstance(images, torch.Tensor):
        for start in range(0, len(images), batch_size):
            yield images[start:start + batch_size]
        return
    for batch in images:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def per_image_statistic(activation: torch.Tensor, statistic: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, U, H, W) -> values (B, U) and argmax positions (B, U, 2); (B, U) passes through."""
    if activation.dim() == 2:
        return activation, torch.zeros(*activation.shape, 2, dtype=torch.long, device=activation.device)
    width = activation.shape[-1]
    flat = activation.flatten(2)
    best, where = flat.max(dim=2)
    positions = torch.stack([where // width, where % width], dim=-1)
    if statistic == "max":
        return best, positions
    if statistic == "mean":
        return flat.mean(dim=2), positions
    raise ValueError(f"unknown statistic {statistic!r}: use 'max' or 'mean'")


def top_activating_examples(model: nn.Module, layer: str, images, k: int = 9, batch_size: int = 256,
                            statistic: str = "max", progress: bool = True) -> TopExamples:
    """Stream the dataset once; keep the k images with the highest activation for every unit."""
    get_module(model, layer)       # a missing layer fails before any work
    device = model_device(model)
    values = indices = positions = None
    seen = 0
    with torch.no_grad(), capture(model, [layer]) as activations:
        for batch in tqdm(batches_of(images, batch_size), desc=f"top examples {layer}",
                          disable=not progress, leave=False):
            model(batch.to(device))
            batch_values, batch_positions = per_image_statistic(activations[layer], statistic)
            batch_indices = torch.arange(seen, seen + len(batch), device=device)
            seen += len(batch)
            values, indices, positions = merge_top(values, indices, positions, batch_values.T,
                                                   batch_indices.expand(batch_values.shape[1], -1),
                                                   batch_positions.transpose(0, 1), k)
    if values is None:
        raise ValueError(f"no images to rank for layer {layer!r}: the dataset is empty")
    return TopExamples(layer, statistic, values.cpu(), indices.cpu(), positions.cpu())


def merge_top(values, indices, positions, new_values, new_indices, new_positions, k):
    """Keep the k best of (running top) + (new batch), per unit: (U, k) tensors."""
    if values is not None:
        new_values = torch.cat([values, new_values], dim=1)
        new_indices = torch.cat([indices, new_indices], dim=1)
        new_positions = torch.cat([positions, new_positions], dim=1)
    best, order = new_values.topk(min(k, new_values.shape[1]), dim=1)
    picked_positions = new_positions.gather(1, order[..., None].expand(-1, -1, 2))
    return best, new_indices.gather(1, order), picked_positions


@dataclass
class ReceptiveField:
    """Per axis (y, x): the window size, the input step between neighbouring units, and the input
    coordinate of unit 0's window centre."""
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom/right exclusive; may extend past the image."""
        corners = []
        for axis, position in enumerate((y, x)):
            centre = self.start[axis] + position * self.jump[axis]
            corners.append(round(centre - (self.size[axis] - 1) / 2))
        return corners[0], corners[1], corners[0] + self.size[0], corners[1] + self.size[1]


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _grown(field: ReceptiveField, module: nn.Module) -> ReceptiveField:
    """The field of a windowed module's output, given the field of its input."""
    size, jump, start = list(field.size), list(field.jump), list(field.start)
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    padding, dilation = _pair(module.padding), _pair(getattr(module, "dilation", 1))
    for axis in range(2):
        span = dilation[axis] * (kernel[axis] - 1)
        start[axis] += (span / 2 - padding[axis]) * jump[axis]
        size[axis] += span * jump[axis]
        jump[axis] *= stride[axis]
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


class _FieldTracker:
    """Forward hooks that give every tensor a module outputs the receptive field of its values.

    Fields follow tensors, not module order, so branches are right: a residual block's shortcut
    (torchvision's `downsample`) starts from the block's input, and an in-place add or ReLU keeps
    its tensor's field. A tensor made by a function (torch.cat of Inception's branches, x + y)
    gets the widest field among the tensors of its spatial size, which is what a concatenation
    or sum of same-size branches has."""

    def __init__(self, image: torch.Tensor):
        self.fields = {image.data_ptr(): ReceptiveField((1, 1), (1, 1), (0.0, 0.0))}
        self.shapes = {image.data_ptr(): tuple(image.shape[-2:])}
        self.kept = [image]          # holding every tensor stops its memory being reused
        self.by_layer: dict[str, ReceptiveField] = {}
        self.problem: str | None = None
        self.flat_shapes: dict[str, tuple] = {}     # layers that ran with no (N, C, H, W) output

    def field_of(self, tensor: torch.Tensor) -> ReceptiveField | None:
        if tensor.data_ptr() in self.fields:
            return self.fields[tensor.data_ptr()]
        same_size = [self.fields[p] for p, shape in self.shapes.items() if shape == tuple(tensor.shape[-2:])]
        return max(same_size, key=lambda f: f.size, default=None)

    def hook(self, name: str, module: nn.Module):
        def record(_, inputs, output):
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                self.flat_shapes.setdefault(name, tuple(output.shape) if isinstance(output, torch.Tensor) else None)
                return
            if list(module.children()) or not inputs:
                field = self.field_of(output)
            else:
                field = self.field_of(inputs[0])
                if isinstance(module, WINDOWED) and field is not None:
                    field = _grown(field, module)
                elif not isinstance(module, POINTWISE) and self.problem is None:
                    self.problem = (f"comes after {name!r} ({type(module).__name__}), whose effect on "
                                    "the receptive field is not spatially local; use a conv layer")
                    field = None
            if field is not None:
                self.fields[output.data_ptr()], self.shapes[output.data_ptr()] = field, tuple(output.shape[-2:])
                self.kept.append(output)
            if self.problem is None:
                self.by_layer.setdefault(name, field)   # first call: a reused module's first use
        return record


def receptive_field(model: nn.Module, layer: str, input_shape) -> ReceptiveField:
    """The theoretical receptive field of one unit of `layer`, from the convs and pools before it
    (any module: a leaf, a residual block such as `layer2`, an Inception module)."""
    get_module(model, layer)
    image_input_shape(model, "a receptive field", input_shape)
    image = torch.zeros(1, *input_shape, device=model_device(model))
    tracker = _FieldTracker(image)
    hooks = {name: tracker.hook(name, module) for name, module in model.named_modules() if name}
    with torch.no_grad(), hooked(model, hooks):
        model(image)
    if layer in tracker.by_layer and tracker.by_layer[layer] is not None:
        return tracker.by_layer[layer]
    if tracker.problem and layer not in tracker.by_layer:
        raise ValueError(f"layer {layer!r} {tracker.problem}")
    if layer in tracker.flat_shapes:
        shape = tracker.flat_shapes[layer]
        output = f"has shape {shape}" if shape else "is not a tensor"
        raise NotSpatialError(f"layer {layer!r} ran, but its output {output}, not a spatial (N, C, H, W) map: "
                              "a receptive field needs a layer with image positions (a conv layer, or one after a "
                              "conv)", output)
    raise ValueError(f"layer {layer!r} did not run in the forward pass with a spatial output")


def deepest_layer_seen_whole(model: nn.Module, layers: list[str], input_shape) -> str:
    """The deepest of `layers` (given in forward order) whose receptive field fits inside the
    image, so that a unit's dataset crop shows what it sees rather than mostly padding (ResNet-18's
    last conv sees 435 px of a 32 px image); the first of them when none fits."""
    side = max(input_shape[-2:])
    for layer in reversed(layers):
        if max(receptive_field(model, layer, input_shape).size) <= side:
            return layer
    return layers[0]


BACKGROUND_SHARE = 0.6        # of the border within BACKGROUND_TOLERANCE of its median: a background
BACKGROUND_TOLERANCE = 0.05   # of the image's value range (JPEG noise on a white page is ~0.02)
CHECKER_PIXELS = 2            # a square of the checkerboard outside a photograph


def border_value(image: torch.Tensor) -> torch.Tensor:
    """(C,) the per-channel median of a (C, H, W) image's outermost pixels: its background."""
    return image_border(image).median(dim=1).values


def image_border(image: torch.Tensor) -> torch.Tensor:
    """(C, P) the outermost pixels of a (C, H, W) image."""
    return torch.cat([image[:, 0], image[:, -1], image[:, 1:-1, 0], image[:, 1:-1, -1]], dim=1)


def has_background(image: torch.Tensor) -> bool:
    """Whether most of the image's border is one colour (MNIST, shapes, a page), not scenery."""
    border, value_range = image_border(image), (image.max() - image.min()).clamp_min(1e-8)
    near = ((border - border_value(image)[:, None]).abs() <= BACKGROUND_TOLERANCE * value_range).all(dim=0)
    return near.float().mean().item() >= BACKGROUND_SHARE


def outside_fill(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, *size) what a crop of `image` shows outside it: its background, else a checkerboard."""
    channels = image.shape[0]
    if has_background(image):
        return border_value(image)[:, None, None].expand(channels, *size)
    low, high = image.min(), image.max()
    rows, columns = (torch.arange(n, device=image.device) // CHECKER_PIXELS for n in size)
    squares = ((rows[:, None] + columns[None, :]) % 2).to(image.dtype)
    return (low + (high - low) * (0.4 + 0.2 * squares)).expand(channels, *size)


def window(image: torch.Tensor, box: tuple[int, int, int, int], outside: torch.Tensor) -> torch.Tensor:
    """The (C, bottom - top, right - left) window of `image` at `box`; where it runs past the
    image, the pixels of `outside`, a canvas of the window's shape."""
    top, left, bottom, right = box
    height, width = image.shape[-2:]
    crop = outside.to(image.dtype).clone()
    inside = image[:, max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
    row, column = max(top, 0) - top, max(left, 0) - left
    crop[:, row:row + inside.shape[1], column:column + inside.shape[2]] = inside
    return crop


def receptive_field_crops(images, top: TopExamples, field: ReceptiveField, unit: int,
                          fill: float | None = None) -> torch.Tensor:
    """(k, C, size_y, size_x) crops of the unit's top images around its strongest positions; the
    parts of a window outside the image are outside_fill's (see the module docstring), or `fill`
    where a caller knows its dataset's background."""
    images = getattr(images, "images", images)
    crops = []
    for index, (y, x) in zip(top.indices[unit].tolist(), top.positions[unit].tolist()):
        image, box = images[index], field.box(y, x)
        size = (box[2] - box[0], box[3] - box[1])
        outside = outside_fill(image, size) if fill is None else torch.full((image.shape[0], *size), float(fill))
        crops.append(window(image, box, outside.to(image.device)))
    return torch.stack(crops)
