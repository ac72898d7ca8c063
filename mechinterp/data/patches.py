"""Natural-image patches cut from the photographs that scikit-image ships (no download).

    from mechinterp.data import natural_patches
    patches = natural_patches(size=16, count=5000, seed=0)    # float32 (5000, 3, 16, 16) in [0, 1]
    grey = natural_patches(8, 1000, seed=0, grey=True)         # (1000, 1, 8, 8)
    mine = natural_patches(5, 1000, channels=model.input_shape[0])   # the channels a model takes

`photo_bank(side)` is the same photographs as one uint8 array (P, side, side, 3), centre-cropped
and resized once per process; the procedural shapes dataset cuts its background textures from it.
Sparse coding and ICA of these patches give the oriented, localised filters of Olshausen & Field.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

# Photographs that scikit-image ships inside the wheel (these never need pooch or the network).
COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                 "hubble_deep_field", "cat", "colorwheel")
GREY_PHOTOS = ("camera", "brick", "grass", "gravel", "moon", "coins", "clock", "page", "text")


def _load_photo(name: str) -> np.ndarray:
    """One scikit-image photograph as float RGB (H, W, 3) in [0, 1]."""
    import skimage.data
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3].astype(np.float32) / 255.0


def _square_resize(image: np.ndarray, side: int) -> np.ndarray:
    """Centre-crop to a square and resize to side x side (anti-aliased)."""
    from skimage.transform import resize
    height, width = image.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    square = image[top:top + crop, left:left + crop]
    return resize(square, (side, side), anti_aliasing=crop > side, preserve_range=True)


@functools.lru_cache(maxsize=4)
def photo_bank(side: int = 256) -> np.ndarray:
    """All shipped photographs as uint8 (P, side, side, 3); computed once per process.

    Treat the result as read-only: it is shared between callers."""
    photos = [_square_resize(_load_photo(name), side) for name in COLOUR_PHOTOS + GREY_PHOTOS]
    bank = np.clip(np.stack(photos) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bank.setflags(write=False)
    return bank


def random_crops(bank: np.ndarray, size: int, count: int, rng: np.random.Generator,
                 max_stride: int = 1) -> np.ndarray:
    """`count` crops of size x size from random photos and places, float32 (count, size, size, 3).

    Each crop samples its photo every `stride` pixels (stride drawn in 1..max_stride), so the
    crops show texture at several scales; the gather is one vectorised indexing operation."""
    photos, side = bank.shape[0], bank.shape[1]
    strides = rng.integers(1, max_stride + 1, size=count)
    spans = (size - 1) * strides + 1
    photo = rng.integers(0, photos, size=count)
    top = (rng.random(count) * (side - spans + 1)).astype(np.int64)
    left = (rng.random(count) * (side - spans + 1)).astype(np.int64)
    offsets = np.arange(size)
    rows = top[:, None] + strides[:, None] * offsets[None, :]
    cols = left[:, None] + strides[:, None] * offsets[None, :]
    crops = bank[photo[:, None, None], rows[:, :, None], cols[:, None, :]]
    return crops.astype(np.float32) / 255.0


def natural_patches(size: int, count: int, seed: int = 0, grey: bool = False,
                    photo_side: int = 512, channels: int | None = None) -> torch.Tensor:
    """`count` random size x size patches of the shipped photographs, float32 (N, C, size, size).

    Deterministic from `seed`. grey=True, or channels=1, averages the colour channels (C = 1);
    channels=C gives the patches as a model of C input channels takes them (data.fit_images)."""
    from mechinterp.data import fit_images
    if size > photo_side:
        raise ValueError(f"patch size {size} exceeds the photographs' side {photo_side}")
    if grey and channels not in (None, 1):
        raise ValueError(f"natural_patches: grey=True gives 1 channel, not channels={channels}")
    rng = np.random.default_rng(seed)
    crops = random_crops(photo_bank(photo_side), size, count, rng)
    patches = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    wanted = 1 if grey else (channels or 3)
    return fit_images(patches, (wanted, size, size), "photograph patches").contiguous()
