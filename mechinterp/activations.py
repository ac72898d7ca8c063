"""A model's activations at named layers, read in the shapes the rest of the engine works with.

Two shapes of matrix come out of a layer. As features, one row per image: conv activations
(N, C, H, W) are flattened, averaged or maxed over space (pool="mean" / "max", one value per
channel) or average-pooled to s x s first (pool=s); similarity, probes and TCAV read these. As
vectors, one row per image and spatial position (its channels): what an SAE on a conv layer
decomposes.

    feats = layer_features(model, images, ["relu1", "relu2"], pool=None)   # {layer: (N, D) cpu}
    for batch in stream_layer_features(model, images, ["relu1"], batch_size=256):
        ...                                                                # {layer: (B, D)}
    layers = representation_layers(model)      # feature_layers + classifier, or ReLU/Linear names
    labels = predictions(model, images)        # argmax class per image, on the CPU
    rows = numpy_rows(features)                # any (N, ...) array or tensor -> (N, D) float64
    scores = unit_scores(model, "relu2", images)             # (images, units): max over positions
    vectors = layer_vectors(model, "relu2", images)          # (images * positions, channels)
    for batch in activation_stream(model, "relu2", images, images_per_batch=64, seed=0):
        ...                                                  # endless, reshuffled every epoch
    vectors, restore = to_vectors(activation)                # (N, C, H, W) <-> (N*H*W, C)

Every read goes through mechinterp.hooks.capture (which warns about a model left in training
mode), batch by batch on the model's device and without gradients.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.device import model_device
from mechinterp.hooks import capture, layer_names

Pool = int | str | None


def representation_layers(model: nn.Module, include_classifier: bool = True) -> list[str]:
    """Layers to compare, in depth order: a zoo CNN's feature_layers (+ classifier), else the
    model's ReLU modules (or Linear/Conv modules when it has none) in definition order."""
    layers = list(getattr(model, "feature_layers", []) or [])
    if not layers:
        layers = layer_names(model, (nn.ReLU,)) or layer_names(model)
        if include_classifier and layer_names(model, (nn.Linear,)):
            layers = layers + [layer_names(model, (nn.Linear,))[-1]]
        return list(dict.fromkeys(layers))
    classifier = getattr(model, "classifier_layer", None)
    if include_classifier and classifier:
        layers.append(classifier)
    return layers


@torch.no_grad()
def batched_activations(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                        batch_size: int = 256) -> Iterator[dict[str, torch.Tensor]]:
    """{layer: raw activation on the model's device} for consecutive batches of images."""
    device = model_device(model)
    with capture(model, layers) as captured:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device))
            yield {layer: captured[layer] for layer in layers}


# --- features: one row per image -----------------------------------------------------------

def as_features(activation: torch.Tensor, pool: Pool = None) -> torch.Tensor:
    """(N, ...) activation -> (N, D) rows. pool: None flattens, "mean" / "max" reduce each
    channel over space, an int s average-pools (N, C, H, W) to (N, C, s, s) before flattening."""
    if pool not in (None, "mean", "max") and not isinstance(pool, int):
        raise ValueError(f"pool must be None, 'mean', 'max' or an int, got {pool!r}")
    if activation.ndim == 4 and pool == "mean":
        return activation.mean(dim=(2, 3))
    if activation.ndim == 4 and pool == "max":
        return activation.amax(dim=(2, 3))
    if activation.ndim == 4 and isinstance(pool, int):
        return F.adaptive_avg_pool2d(activation, pool).flatten(1)
    return activation.reshape(activation.shape[0], -1)


def stream_layer_features(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                          batch_size: int = 256, pool: Pool = None) -> Iterator[dict[str, torch.Tensor]]:
    """Yield {layer: (B, D) features on the model's device} for consecutive batches of images."""
    for batch in batched_activations(model, images, layers, batch_size):
        yield {layer: as_features(activation, pool) for layer, activation in batch.items()}


def layer_features(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                   batch_size: int = 256, pool: Pool = None) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float32 features on the CPU} for all images, collected batch by batch."""
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for batch in stream_layer_features(model, images, layers, batch_size, pool):
        for layer, features in batch.items():
            chunks[layer].append(features.float().cpu())
    return {layer: torch.cat(parts) for layer, parts in chunks.items()}


def numpy_rows(features) -> np.ndarray:
    """(N, ...) numpy array or tensor on any device -> (N, D) float64 numpy rows (what sklearn and
    scipy fits read)."""
    return torch.as_tensor(features).detach().cpu().double().reshape(len(features), -1).numpy()


def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class of every image (on the CPU)."""
    device = model_device(model)
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(images), batch_size)])


# --- vectors: one row per image and position ------------------------------------------------

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


def _layer_batches(model: nn.Module, layer: str, images: torch.Tensor,
                   batch_size: int) -> Iterator[torch.Tensor]:
    for batch in batched_activations(model, images, [layer], batch_size):
        yield batch[layer]


def unit_scores(model: nn.Module, layer: str, images: torch.Tensor, batch_size: int = 256,
                vector_map: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One score per image and unit: the unit's activation, or its maximum over positions.

    vector_map turns each activation vector into other units first (an SAE's encode)."""
    scores = []
    for activation in _layer_batches(model, layer, images, batch_size):
        vectors, _ = to_vectors(activation)
        if vector_map is not None:
            vectors = vector_map(vectors)
        per_image = vectors.reshape(len(activation), -1, vectors.shape[-1])
        scores.append(per_image.amax(dim=1).cpu())
    return torch.cat(scores)


def layer_vectors(model: nn.Module, layer: str, images: torch.Tensor,
                  batch_size: int = 256) -> torch.Tensor:
    """Every activation vector of the layer over the images, on the model's device."""
    return torch.cat([to_vectors(a)[0] for a in _layer_batches(model, layer, images, batch_size)])


def activation_stream(model: nn.Module, layer: str, images: torch.Tensor,
                      images_per_batch: int = 64, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless batches of activation vectors, computed on the fly from shuffled images.

    Vectors within a batch are shuffled too, so positions of one image are not in order."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), images_per_batch):
            batch = images[order[start:start + images_per_batch]]
            (activation,) = _layer_batches(model, layer, batch, len(batch))
            vectors, _ = to_vectors(activation)
            yield vectors[torch.randperm(len(vectors), generator=generator).to(vectors.device)]
