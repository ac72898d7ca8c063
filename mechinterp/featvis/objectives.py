"""What the visualisation maximises: small objects that score every image of a batch.

An objective reads the activations of named layers (and "input", the image batch itself) and
returns one number per image, shape (batch,). Render maximises the sum, so image i only follows the
gradient of its own score and a batch is N independent visualisations at once.

Targets:   channel, neuron (one spatial position), direction (a vector in activation space, e.g.
           an SAE feature or a probe), deepdream (a whole layer), class_logit, diversity.
Penalties: l1, l2, total_variation, blur (scores to subtract).
Each objective can aim at one image (`batch=i`: the others score 0), or take one target per image:
channel("relu2", range(16)) makes image i maximise channel i, which is how a whole layer is
visualised in one optimisation. Objectives compose with +, - and scale with *:

    goal = obj.channel("relu2", range(16)) - 0.05 * obj.l2() - 0.2 * obj.total_variation()
    goal.layers                      # {'relu2', 'input'}: what render must capture
    goal(activations)                # (16,) scores

Activations are the dict that mechinterp.hooks.capture fills, plus "input" (Lucid's T("input")).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

INPUT = "input"
PerImageOrOne = int | Sequence[int]


class Objective:
    """Base class: `values(activations) -> (batch,)`; subclasses set `layers` and `description`."""

    layers: frozenset[str] = frozenset()
    description: str = "objective"
    batch_size: int | None = None          # the batch size a per-image target implies, if any

    def values(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.values(activations)

    def __repr__(self) -> str:
        return self.description

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return self if other == 0 else Sum([self, Constant(other)])
        return Sum([self, other])

    __radd__ = __add__

    def __neg__(self):
        return Scaled(-1.0, self)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, factor):
        if not isinstance(factor, (int, float)):
            raise TypeError(f"objectives scale by numbers only, got {type(factor).__name__}")
        return Scaled(float(factor), self)

    __rmul__ = __mul__

    def __truediv__(self, divisor):
        return self * (1.0 / divisor)


class Constant(Objective):
    def __init__(self, value: float):
        self.value, self.description = float(value), repr(float(value))

    def values(self, activations):
        reference = next(iter(activations.values()))
        return torch.full((reference.shape[0],), self.value, device=reference.device)


class Sum(Objective):
    def __init__(self, terms: Sequence[Objective]):
        flat = [t for term in terms for t in (term.terms if isinstance(term, Sum) else [term])]
        self.terms = flat
        self.layers = frozenset().union(*(t.layers for t in flat))
        sizes = {t.batch_size for t in flat if t.batch_size is not None}
        if len(sizes) > 1:
            raise ValueError(f"objectives imply different batch sizes {sorted(sizes)}: {flat}")
        self.batch_size = sizes.pop() if sizes else None
        self.description = " + ".join(t.description for t in flat)

    def values(self, activations):
        return sum(term.values(activations) for term in self.terms)


class Scaled(Objective):
    def __init__(self, factor: float, term: Objective):
        self.factor, self.term = factor, term
        self.layers, self.batch_size = term.layers, term.batch_size
        self.description = f"{factor:g} * ({term.description})"

    def values(self, activations):
        return self.factor * self.term.values(activations)


def read_layer(activations: dict[str, torch.Tensor], layer: str, description: str) -> torch.Tensor:
    """The activation of `layer`, or an error saying which objective wanted it."""
    if layer not in activations:
        raise KeyError(f"objective {description} reads layer {layer!r}, but the forward pass recorded "
                       f"only {sorted(activations)}; capture that layer (render does this for you)")
    return activations[layer]


def only_image(values: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Keep image `batch`'s score and zero the others (all kept when batch is None)."""
    if batch is None:
        return values
    if not -values.shape[0] <= batch < values.shape[0]:
        raise IndexError(f"objective targets image {batch} of a batch of {values.shape[0]}")
    mask = torch.zeros_like(values)
    mask[batch] = 1.0
    return values * mask


def per_image_index(target: PerImageOrOne, batch_size: int, what: str) -> torch.Tensor | int:
    """An int stays; a sequence must give one index per image."""
    if isinstance(target, int):
        return target
    if len(target) != batch_size:
        raise ValueError(f"{what} gives {len(target)} targets for a batch of {batch_size} images")
    return torch.as_tensor(list(target))


class LayerObjective(Objective):
    """An objective on one layer; `target` is one index for all images or one per image."""

    def __init__(self, layer: str, target, batch: int | None, name: str):
        self.layer, self.target, self.batch = layer, target, batch
        self.layers = frozenset([layer])
        self.batch_size = None if isinstance(target, int) or target is None else len(target)
        shown = target if isinstance(target, int) or target is None else f"{len(target)} per-image targets"
        self.description = f"{name}({layer!r}, {shown}" + (f", batch={batch})" if batch is not None else ")")

    def pick_channel(self, activation: torch.Tensor) -> torch.Tensor:
        """(B, C, ...) -> (B, ...): image i's channel (the same for all, or target[i])."""
        index = per_image_index(self.target, activation.shape[0], self.description)
        if activation.shape[1] <= (index if isinstance(index, int) else int(index.max())):
            raise IndexError(f"{self.description}: layer {self.layer!r} has {activation.shape[1]} channels")
        if isinstance(index, int):
            return activation[:, index]
        rows = torch.arange(activation.shape[0], device=activation.device)
        return activation[rows, index.to(activation.device)]


class Channel(LayerObjective):
    def values(self, activations):
        activation = read_layer(activations, self.layer, self.description)
        # average over space before picking, as a sum divided afterwards: the gradient reaching the
        # layer is then a broadcast view that the convolution's backward lays out once, not an
        # index_put into a zero tensor (a mean's backward would also divide every element)
        if activation.dim() > 2:
            spatial_means = activation.sum(tuple(range(2, activation.dim()))) / activation[0, 0].numel()
        else:
            spatial_means = activation
        return only_image(self.pick_channel(spatial_means), self.batch)


class Neuron(LayerObjective):
    def __init__(self, layer, target, x, y, batch):
        super().__init__(layer, target, batch, "neuron")
        self.x, self.y = x, y

    def values(self, activations):
        activation = read_layer(activations, self.layer, self.description)
        height, width = activation.shape[-2:]
        y = height // 2 if self.y is None else self.y
        x = width // 2 if self.x is None else self.x
        return only_image(self.pick_channel(activation[..., y, x][..., None])[:, 0], self.batch)


class Direction(Objective):
    """Activation projected on a unit vector (C,) or one vector per image (B, C), averaged over space."""

    def __init__(self, layer: str, vectors: torch.Tensor, cosine_power: float, batch: int | None):
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        self.layer, self.batch, self.cosine_power = layer, batch, cosine_power
        self.vectors = vectors / vectors.norm(dim=-1, keepdim=True)
        self.layers = frozenset([layer])
        self.batch_size = vectors.shape[0] if vectors.dim() == 2 else None
        self.description = f"direction({layer!r}, {tuple(vectors.shape)} vector)"

    def values(self, activations):
        activation = read_layer(activations, self.layer, self.description)
        vectors = self.vectors.to(activation.device, activation.dtype)
        vectors = vectors.expand(activation.shape[0], -1) if vectors.dim() == 1 else vectors
        if vectors.shape != activation.shape[:2]:
            raise ValueError(f"{self.description}: vectors {tuple(vectors.shape)} do not match "
                             f"activations {tuple(activation.shape[:2])} (batch, channels)")
        shape = vectors.shape + (1,) * (activation.dim() - 2)
        dot = (activation * vectors.view(shape)).sum(1)
        if self.cosine_power:
            cosine = dot / activation.norm(dim=1).clamp_min(1e-8)
            dot = dot * cosine.clamp_min(1e-4) ** self.cosine_power
        return only_image(dot.flatten(1).mean(1) if dot.dim() > 1 else dot, self.batch)


class LayerEnergy(Objective):
    """DeepDream's objective: the mean squared activation of a whole layer."""

    def __init__(self, layer: str, batch: int | None):
        self.layer, self.batch, self.layers = layer, batch, frozenset([layer])
        self.description = f"deepdream({layer!r})"

    def values(self, activations):
        activation = read_layer(activations, self.layer, self.description)
        return only_image(activation.pow(2).flatten(1).mean(1), self.batch)


class Diversity(Objective):
    """Penalise similar Gram matrices (style) across the batch, so images show different facets.

    Image i scores -(1/B) sum_{j != i} cos(G_i, G_j), as Lucid's diversity objective."""

    def __init__(self, layer: str):
        self.layer, self.layers = layer, frozenset([layer])
        self.description = f"diversity({layer!r})"

    def values(self, activations):
        activation = read_layer(activations, self.layer, self.description)
        batch, channels = activation.shape[:2]
        flat = activation.reshape(batch, channels, -1)
        grams = F.normalize((flat @ flat.transpose(1, 2)).reshape(batch, -1), dim=1)
        similarity = grams @ grams.T
        return -(similarity.sum(1) - similarity.diagonal()) / batch


class ImagePenalty(Objective):
    """A penalty on the input image (or any layer); subtract it from the goal."""

    def __init__(self, name: str, layer: str, batch: int | None):
        self.layer, self.batch, self.layers = layer, batch, frozenset([layer])
        self.name, self.description = name, f"{name}({layer!r})"

    def values(self, activations):
        tensor = read_layer(activations, self.layer, self.description)
        return only_image(self.penalty(tensor), self.batch)


class L1(ImagePenalty):
    def __init__(self, layer, constant, batch):
        super().__init__("l1", layer, batch)
        self.constant = constant

    def penalty(self, tensor):
        return (tensor - self.constant).abs().flatten(1).mean(1)


class L2(ImagePenalty):
    def __init__(self, layer, constant, batch):
        super().__init__("l2", layer, batch)
        self.constant = constant

    def penalty(self, tensor):
        return ((tensor - self.constant).pow(2).flatten(1).mean(1) + 1e-8).sqrt()


class TotalVariation(ImagePenalty):
    def penalty(self, tensor):
        down = (tensor[..., 1:, :] - tensor[..., :-1, :]).abs().flatten(1).mean(1)
        right = (tensor[..., :, 1:] - tensor[..., :, :-1]).abs().flatten(1).mean(1)
        return down + right


class Blur(ImagePenalty):
    """Half the squared distance to a 3x3-blurred copy (held fixed): following it blurs the image."""

    def penalty(self, tensor):
        channels = tensor.shape[1]
        kernel = torch.tensor([[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]], device=tensor.device)
        kernel = (kernel / kernel.sum()).expand(channels, 1, 3, 3)
        with torch.no_grad():
            blurred = F.conv2d(F.pad(tensor, [1] * 4, mode="replicate"), kernel, groups=channels)
        return 0.5 * (tensor - blurred).pow(2).flatten(1).mean(1)


def channel(layer: str, index: PerImageOrOne, batch: int | None = None) -> Objective:
    """Mean activation of a channel (a sequence: channel index[i] for image i)."""
    return Channel(layer, index if isinstance(index, int) else list(index), batch, "channel")


def neuron(layer: str, index: PerImageOrOne, x: int | None = None, y: int | None = None,
           batch: int | None = None) -> Objective:
    """One spatial position of a channel (the centre by default)."""
    return Neuron(layer, index if isinstance(index, int) else list(index), x, y, batch)


def direction(layer: str, vectors, cosine_power: float = 0.0, batch: int | None = None) -> Objective:
    """Projection on a direction in activation space (C,), or one per image (B, C)."""
    return Direction(layer, vectors, cosine_power, batch)


def deepdream(layer: str, batch: int | None = None) -> Objective:
    """Everything a layer already responds to, amplified (Mordvintsev et al. 2015)."""
    return LayerEnergy(layer, batch)


def class_logit(layer: str, class_index: PerImageOrOne, batch: int | None = None) -> Objective:
    """A class logit: the output unit of the classifier layer."""
    return Channel(layer, class_index if isinstance(class_index, int) else list(class_index),
                   batch, "class_logit")


def diversity(layer: str) -> Objective:
    return Diversity(layer)


def l1(layer: str = INPUT, constant: float = 0.5, batch: int | None = None) -> Objective:
    """Mean |x - constant| (constant 0.5 is mid-grey for an image in [0, 1])."""
    return L1(layer, constant, batch)


def l2(layer: str = INPUT, constant: float = 0.5, batch: int | None = None) -> Objective:
    """Root mean square distance from `constant`."""
    return L2(layer, constant, batch)


def total_variation(layer: str = INPUT, batch: int | None = None) -> Objective:
    """Mean absolute difference between neighbouring pixels (penalises high frequencies)."""
    return TotalVariation("total_variation", layer, batch)


def blur(layer: str = INPUT, batch: int | None = None) -> Objective:
    return Blur("blur", layer, batch)
