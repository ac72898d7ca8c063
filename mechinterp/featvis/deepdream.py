"""DeepDream: start from a photograph and amplify whatever a layer already sees in it.

Feature visualisation starts from noise and maximises one unit; DeepDream (Mordvintsev et al.
2015) starts from a real image and maximises a whole layer (objectives.deepdream: the mean squared
activation), so patterns the layer half-detects grow into the picture. Two tricks of the original:
  octaves  dream at a small scale first, then upsample the added detail and continue at larger
           scales, so patterns appear at several sizes;
  tiling   the image is cut into tiles of the model's input size and the tiles go through the model
           as one batch, so a 32-pixel model can dream over a 256-pixel photograph; a random roll
           each step hides the tile seams.

    photo = photograph("astronaut", size=192)                     # (3, 192, 192) in [0, 1]
    dream = deepdream(model, photo, obj.deepdream("relu2"), octaves=3, steps_per_octave=20)
    dream.image, dream.objective_before, dream.objective_after
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mechinterp.device import model_device
from mechinterp.featvis.objectives import INPUT, Objective
from mechinterp.featvis.render import check_layers, check_start_channels, model_channels, model_input_shape
from mechinterp.hooks import capture


@dataclass
class DreamResult:
    image: torch.Tensor                                   # (C, H, W) in [0, 1], CPU
    octave_images: list[torch.Tensor] = field(default_factory=list)   # the image after each octave
    objective_before: float = 0.0                         # mean over tiles, photograph
    objective_after: float = 0.0                          # mean over tiles, dream


def photograph(name: str = "astronaut", size: int | None = None, channels: int = 3) -> torch.Tensor:
    """A scikit-image sample photograph (shipped with the package) as (C, H, W) in [0, 1],
    centre-cropped to a square and resized to `size`; channels=1 gives grey."""
    import skimage.data
    if not hasattr(skimage.data, name):
        raise ValueError(f"scikit-image has no sample image {name!r}: try 'astronaut', 'coffee' or 'chelsea'")
    array = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    image = torch.from_numpy(array if array.ndim == 3 else array[..., None]).permute(2, 0, 1)[:3]
    side = min(image.shape[-2:])
    top, left = (image.shape[1] - side) // 2, (image.shape[2] - side) // 2
    image = image[:, top:top + side, left:left + side]
    image = image.mean(0, keepdim=True) if channels == 1 else image.expand(channels, -1, -1)
    return resize(image[None], (size, size))[0] if size else image


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def to_tiles(image: torch.Tensor, tile: tuple[int, int]) -> torch.Tensor:
    """(1, C, H, W) with H, W multiples of the tile -> (tiles, C, tile_h, tile_w), differentiable."""
    channels = image.shape[1]
    tiles = image.unfold(2, tile[0], tile[0]).unfold(3, tile[1], tile[1])
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels, *tile)


def pad_to_tiles(image: torch.Tensor, tile: tuple[int, int]) -> torch.Tensor:
    """Reflect-pad bottom and right so both sides are multiples of the tile size."""
    pad_y, pad_x = (-image.shape[2]) % tile[0], (-image.shape[3]) % tile[1]
    mode = "reflect" if pad_y < image.shape[2] and pad_x < image.shape[3] else "replicate"
    return F.pad(image, [0, pad_x, 0, pad_y], mode=mode)


def tiled_score(model: nn.Module, objective: Objective, image: torch.Tensor, tile, activations) -> torch.Tensor:
    """Per-tile objective values of a (1, C, H, W) image; activations is a live capture dict."""
    tiles = to_tiles(pad_to_tiles(image, tile), tile)
    model(tiles)
    return objective({**activations, INPUT: tiles})


def ascent_step(model, objective, image, tile, generator, step_size, activations) -> torch.Tensor:
    """One normalised gradient-ascent step on a randomly rolled copy (the roll hides tile seams)."""
    shift = [int(torch.randint(0, t, (1,), generator=generator)) for t in tile]
    rolled = torch.roll(image, shift, dims=(2, 3)).detach().requires_grad_(True)
    score = tiled_score(model, objective, rolled, tile, activations).sum()
    if not torch.isfinite(score):
        raise FloatingPointError(f"DeepDream objective {objective.description} became {score.item()}; "
                                 "lower step_size or check the model on the photograph")
    (gradient,) = torch.autograd.grad(score, rolled)
    gradient = torch.roll(gradient, [-s for s in shift], dims=(2, 3))
    return (image + step_size * gradient / gradient.abs().mean().clamp_min(1e-8)).clamp(0, 1).detach()


def deepdream(model: nn.Module, photo: torch.Tensor, objective: Objective, octaves: int = 3,
              octave_scale: float = 1.4, steps_per_octave: int = 20, step_size: float = 0.01,
              tile_size: tuple[int, int] | None = None, seed: int = 0, progress: bool = True) -> DreamResult:
    """Amplify `objective` in `photo` (C, H, W in [0, 1]) over octaves from small to full size."""
    layers = check_layers(model, objective)
    check_start_channels(model, photo.shape, f"pass photograph(..., channels={model_channels(model)})")
    device = model_device(model)
    tile = tuple(tile_size or model_input_shape(model, None)[1:])
    generator = torch.Generator().manual_seed(seed)
    base = photo[None].to(device)
    full = base.shape[-2:]
    sizes = [tuple(max(t, round(s / octave_scale ** k)) for s, t in zip(full, tile))
             for k in reversed(range(octaves))]
    detail = torch.zeros(1, base.shape[1], *sizes[0], device=device)
    result = DreamResult(image=torch.empty(0))
    with capture(model, layers, detach=False) as activations:
        for size in tqdm(sizes, desc="deepdream octaves", disable=not progress, leave=False):
            scaled_base = resize(base, size)
            image = (scaled_base + resize(detail, size)).clamp(0, 1)
            for _ in range(steps_per_octave):
                image = ascent_step(model, objective, image, tile, generator, step_size, activations)
            detail = image - scaled_base
            result.octave_images.append(image[0].cpu())
        with torch.no_grad():
            result.objective_before = tiled_score(model, objective, base, tile, activations).mean().item()
            result.objective_after = tiled_score(model, objective, image, tile, activations).mean().item()
    result.image = image[0].cpu()
    return result
