"""A layer's activations in the shapes this package reads them in.

A dense layer gives one vector per image; a convolutional layer gives one vector per image and
spatial position (its channels), which is what an SAE on a conv layer decomposes.

    scores = unit_scores(model, "relu2", images)              # (images, units): max over positions
    vectors = layer_vectors(model, "relu2", images)           # (images * positions, channels)
    for batch in activation_stream(model, "relu2", images, images_per_batch=64, seed=0):
        ...                                                   # endless, reshuffled every epoch
    vectors, restore = to_vectors(activation)                 # (N, C, H, W) <-> (N*H*W, C)

All activations are read through mechinterp.hooks.capture, in eval mode and without gradients.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from mechinterp.hooks import capture


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def to_vectors(activation: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Flatten (N, C) or (N, C, H, W) to vectors (rows) and return the inverse reshaping.

    The inverse accepts vectors of another width (latents instead of channels)."""
    if activation.dim() == 2:
        return activation, lambda vectors: vectors
    if activation.dim() != 4:
        raise ValueError(f"expected a (N, C) or (N, C, H, W) activation, got shape {tuple(activation.shape)}")
    n, channels, height, width = activation.shape
    vectors = activation.permute(0, 2, 3, 1).reshape(-1, channels)

    def restore(rows: torch.Tensor) -> torch.Tensor:
        return rows.reshape(n, height, width, -1).permute(0, 3, 1, 2)
    return vectors, restore


@torch.no_grad()
def _batched_activations(model: nn.Module, layer: str, images: torch.Tensor,
                         batch_size: int) -> Iterator[torch.Tensor]:
    device = model_device(model)
    with capture(model, [layer]) as captured:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device))
            yield captured[layer]


def unit_scores(model: nn.Module, layer: str, images: torch.Tensor, batch_size: int = 256,
                vector_map: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One score per image and unit: the unit's activation, or its maximum over positions.

    vector_map turns each activation vector into other units first (an SAE's encode)."""
    scores = []
    for activation in _batched_activations(model, layer, images, batch_size):
        vectors, _ = to_vectors(activation)
        if vector_map is not None:
            vectors = vector_map(vectors)
        per_image = vectors.reshape(len(activation), -1, vectors.shape[-1])
        scores.append(per_image.amax(dim=1).cpu())
    return torch.cat(scores)


def layer_vectors(model: nn.Module, layer: str, images: torch.Tensor,
                  batch_size: int = 256) -> torch.Tensor:
    """Every activation vector of the layer over the images, on the model's device."""
    return torch.cat([to_vectors(a)[0] for a in _batched_activations(model, layer, images, batch_size)])


def activation_stream(model: nn.Module, layer: str, images: torch.Tensor,
                      images_per_batch: int = 64, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless batches of activation vectors, computed on the fly from shuffled images.

    Vectors within a batch are shuffled too, so positions of one image are not in order."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), images_per_batch):
            batch = images[order[start:start + images_per_batch]]
            (activation,) = _batched_activations(model, layer, batch, len(batch))
            vectors, _ = to_vectors(activation)
            yield vectors[torch.randperm(len(vectors), generator=generator).to(vectors.device)]
