"""A model's activations at named layers over a dataset, as (N, D) feature matrices.

Every read goes through mechinterp.hooks.capture. Conv activations (N, C, H, W) become rows by
flattening, by averaging or taking the maximum over space (pool="mean" / "max", one value per
channel) or by average-pooling to s x s first (pool=s):

    feats = layer_features(model, images, ["relu1", "relu2"], pool=None)   # {layer: (N, D) cpu}
    for batch in stream_layer_features(model, images, ["relu1"], batch_size=256):
        ...                                                                # {layer: (B, D)}
    layers = representation_layers(model)      # feature_layers + classifier, or Linear/Conv names
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

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


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def stream_layer_features(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                          batch_size: int = 256, pool: Pool = None) -> Iterator[dict[str, torch.Tensor]]:
    """Yield {layer: (B, D) features on the model's device} for consecutive batches of images."""
    device = _model_device(model)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        with torch.no_grad(), capture(model, layers) as acts:
            model(batch)
        yield {layer: as_features(acts[layer], pool) for layer in layers}


def layer_features(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                   batch_size: int = 256, pool: Pool = None) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float32 features on the CPU} for all images, collected batch by batch."""
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for batch in stream_layer_features(model, images, layers, batch_size, pool):
        for layer, features in batch.items():
            chunks[layer].append(features.float().cpu())
    return {layer: torch.cat(parts) for layer, parts in chunks.items()}


def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class of every image (on the CPU)."""
    device = _model_device(model)
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(images), batch_size)])
