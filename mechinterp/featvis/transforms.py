"""Random transformations the visualisation must survive: a prior towards robust, natural patterns.

Each optimisation step shows the model a randomly padded, jittered, scaled and rotated copy of the
image; a pattern that only works at one exact pixel offset (high-frequency "cheating") stops
working, a real feature keeps working (Olah et al. 2017, "Transformation robustness"; Lucid's
transform.py). The images go through plain torch (pad, indexing, grid_sample), so it
is differentiable and runs on any device; the few numbers of each image's affine map, and the
sampling grid they give, are computed in numpy.

Every image of the batch draws its own random numbers from its own seeded generator, so image i is
transformed the same way whether it is rendered alone or in a batch of 256:

    random = PerImageRandom(seeds=[0, 1, 2, 3])
    transform = standard_transforms(image_size=32)      # pad, jitter, scale+rotate, jitter: one resample
    shown = transform(images, random)                   # same size as images

A transform is any callable (images, random) -> images; Compose chains them.

Why our own and not torchvision.transforms.v2 (used where a transform is a standard one): v2 draws
one set of random parameters per call, so per-image transforms mean one call per image, and its
Pad, RandomCrop, RandomAffine, RandomCrop are resampled one after another. Here the whole chain is
one affine map per image and one grid_sample for the batch: about 6.5x faster (bench/
bench_transforms.py: 3.2 ms against 21 ms for a batch of 64 32x32 images, forward and backward,
one CPU thread, on the 2-core machine), and reproducible per image as above.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Lucid's standard choices: scales 0.9 ... 1.1, angles -10 ... 10 degrees with extra weight on 0.
LUCID_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
LUCID_ANGLES = tuple(range(-10, 11)) + (0,) * 5
# Seeds of the transform generators are offset from the image seeds so the two streams differ.
TRANSFORM_SEED_OFFSET = 1_000_003


class PerImageRandom:
    """One CPU generator per image: image i's draws depend on seeds[i] only (batch-size independent)."""

    ROWS_PER_BLOCK = 64     # integer_rows draws this many steps ahead per generator

    def __init__(self, seeds: Sequence[int]):
        self.generators = [torch.Generator().manual_seed(int(s) + TRANSFORM_SEED_OFFSET) for s in seeds]
        self.block: torch.Tensor | None = None    # (images, ROWS_PER_BLOCK, columns) drawn ahead
        self.block_highs: tuple[int, ...] = ()
        self.block_start: list[torch.Tensor] = []  # the generators' states before the block
        self.served = 0

    def __len__(self) -> int:
        return len(self.generators)

    def integers(self, high: int) -> torch.Tensor:
        """One integer in [0, high) per image."""
        self.hand_back_unserved()
        return torch.cat([torch.randint(0, high, (1,), generator=g) for g in self.generators])

    def choice(self, values: Sequence[float]) -> torch.Tensor:
        """One element of `values` per image (float tensor)."""
        table = torch.tensor(values, dtype=torch.float32)
        return table[self.integers(len(values))]

    def integer_rows(self, highs: Sequence[int]) -> torch.Tensor:
        """(images, len(highs)): column k as `integers(highs[k])` would give, called in that order.

        One draw per generator for ROWS_PER_BLOCK calls instead of one per column per call (the
        loop over generators is most of the cost): torch's CPU randint takes one 32-bit number r
        per value, in order, and returns r mod its range, so drawing modulo a common multiple L of
        the highs and reducing mod each high gives the same values ((r mod L) mod h = r mod h),
        and a block of rows is the same numbers as that many calls (tested against the
        column-by-column draws)."""
        highs = tuple(int(h) for h in highs)
        if self.block is None or highs != self.block_highs or self.served == self.ROWS_PER_BLOCK:
            self.hand_back_unserved()
            self.block_start = [g.get_state() for g in self.generators]
            rows = self.draw_rows(highs, self.ROWS_PER_BLOCK)
            self.block, self.block_highs, self.served = rows % torch.tensor(highs), highs, 0
        self.served += 1
        return self.block[:, self.served - 1]

    def draw_rows(self, highs: tuple[int, ...], count: int) -> torch.Tensor:
        common = math.lcm(*highs)
        return torch.stack([torch.randint(0, common, (count, len(highs)), generator=g) for g in self.generators])

    def hand_back_unserved(self) -> None:
        """Leave the generators where calls without a block would have: rewind to the block's
        start and draw again only the rows that were served."""
        if self.block is not None and self.served < self.ROWS_PER_BLOCK:
            for generator, state in zip(self.generators, self.block_start):
                generator.set_state(state)
            self.draw_rows(self.block_highs, self.served)
        self.block = None


def _check_batch(images: torch.Tensor, random: PerImageRandom) -> None:
    if images.shape[0] != len(random):
        raise ValueError(f"{images.shape[0]} images but {len(random)} random generators")


@dataclass
class Pad:
    """Pad every side by `width` pixels of a constant value (mid-grey by default)."""
    width: int
    value: float = 0.5

    def __call__(self, images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
        return F.pad(images, [self.width] * 4, mode="constant", value=self.value)


@dataclass
class Jitter:
    """Random crop that removes `shift` pixels from each dimension: a random translation of 0..shift."""
    shift: int

    def __call__(self, images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
        _check_batch(images, random)
        batch, channels, height, width = images.shape
        out_height, out_width = height - self.shift, width - self.shift
        offset_y = random.integers(self.shift + 1).to(images.device)
        offset_x = random.integers(self.shift + 1).to(images.device)
        rows = offset_y[:, None] + torch.arange(out_height, device=images.device)
        cols = offset_x[:, None] + torch.arange(out_width, device=images.device)
        # two gathers (rows, then columns) are much faster to differentiate than fancy indexing
        images = images.gather(2, rows[:, None, :, None].expand(batch, channels, out_height, width))
        return images.gather(3, cols[:, None, None, :].expand(batch, channels, out_height, out_width))


def sampling_grid(matrices: np.ndarray, height: int, width: int) -> np.ndarray:
    """(B, H, W, 2) grid_sample grid of the (B, 2, 3) output -> input maps (normalised coordinates,
    align_corners=False): what F.affine_grid gives, computed in float64 as one matrix product,
    where affine_grid's batched product of (H*W, 3) by (3, 2) costs about 0.5 ms per step at 64 images."""
    grid = np.asarray(matrices, dtype=np.float64).reshape(-1, 3) @ pixel_centres(height, width)  # (B*2, H*W)
    return grid.reshape(-1, 2, height, width).transpose(0, 2, 3, 1)


@functools.lru_cache(maxsize=16)
def pixel_centres(height: int, width: int) -> np.ndarray:
    """(3, H*W): each output pixel's centre (x, y, 1) in normalised coordinates; the same every
    step of a render, so made once per image size (read-only: the cache hands out one array)."""
    xs = (np.arange(width) * 2 + 1) / width - 1
    ys = (np.arange(height) * 2 + 1) / height - 1
    centres = np.stack([np.tile(xs, height), np.repeat(ys, width), np.ones(height * width)])
    centres.flags.writeable = False
    return centres


def affine_resample(images: torch.Tensor, matrices: np.ndarray | torch.Tensor, fill: float) -> torch.Tensor:
    """Resample each image with its own (2, 3) affine map (output -> input, normalised coords).

    Pixels that come from outside the image take the value `fill`."""
    matrices = matrices.detach().cpu().double().numpy() if torch.is_tensor(matrices) else matrices
    grid = torch.from_numpy(sampling_grid(matrices, *images.shape[-2:])).to(images.device, images.dtype)
    moved = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved + fill


def scale_rotate_matrices(scales: np.ndarray, degrees: np.ndarray, height: int, width: int) -> np.ndarray:
    """(B, 2, 3) output -> input maps for zooming by `scales` and rotating by `degrees` about the centre.

    The per-image maps are a few numbers each: numpy (float64) builds them in microseconds, where
    the same dozen small torch ops cost about a millisecond per render step."""
    radians = np.asarray(degrees, dtype=np.float64) * math.pi / 180
    scales = np.asarray(scales, dtype=np.float64)
    cos, sin = np.cos(radians) / scales, np.sin(radians) / scales
    # a rotation in pixel units, written in normalised coordinates (aspect ratio corrected)
    matrices = np.zeros((len(scales), 2, 3))
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, -sin * height / width
    matrices[:, 1, 0], matrices[:, 1, 1] = sin * width / height, cos
    return matrices


@dataclass
class RandomScaleRotate:
    """Zoom by a factor drawn from `scales` and rotate by an angle drawn from `angles` (degrees),
    about the centre, in one resampling (size kept; uncovered pixels take `fill`)."""
    scales: Sequence[float] = LUCID_SCALES
    angles: Sequence[float] = LUCID_ANGLES
    fill: float = 0.5

    def __call__(self, images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
        _check_batch(images, random)
        scales, degrees = random.choice(self.scales), random.choice(self.angles)
        matrices = scale_rotate_matrices(scales.numpy(), degrees.numpy(), *images.shape[-2:])
        return affine_resample(images, matrices, self.fill)


def random_scale(scales: Sequence[float] = LUCID_SCALES, fill: float = 0.5) -> RandomScaleRotate:
    """Zoom only."""
    return RandomScaleRotate(scales=scales, angles=(0,), fill=fill)


def random_rotate(angles: Sequence[float] = LUCID_ANGLES, fill: float = 0.5) -> RandomScaleRotate:
    """Rotate only."""
    return RandomScaleRotate(scales=(1.0,), angles=angles, fill=fill)


@dataclass
class Compose:
    """Apply transforms in order."""
    transforms: Sequence[Callable]

    def __call__(self, images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
        for transform in self.transforms:
            images = transform(images, random)
        return images


def pixels_to_normalised(height: int, width: int) -> np.ndarray:
    """3x3 map from pixel indices (x, y, 1) to grid_sample's normalised coordinates (align_corners=False)."""
    return np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])


def translations(shift_x: np.ndarray, shift_y: np.ndarray) -> np.ndarray:
    """(B, 3, 3) maps adding (shift_x, shift_y) to pixel coordinates."""
    matrices = np.tile(np.eye(3), (len(shift_x), 1, 1))
    matrices[:, 0, 2], matrices[:, 1, 2] = shift_x, shift_y
    return matrices


@dataclass
class PadJitterScaleRotateJitter:
    """Lucid's standard set (pad p, jitter p, scale and rotate, jitter p) in one resampling.

    Each step is an affine map of pixel coordinates, so their composition is one affine map per image
    and a single grid_sample gives the same images as Compose([Pad(p), Jitter(p), RandomScaleRotate(),
    Jitter(p)]) with the same draws (tested), without the three intermediate copies of the batch.
    Padding is the fill colour, so resampling the unpadded image with `fill` outside is exact."""
    pad: int
    scales: Sequence[float] = LUCID_SCALES
    angles: Sequence[float] = LUCID_ANGLES
    fill: float = 0.5

    def __call__(self, images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
        _check_batch(images, random)
        jitter = self.pad + 1   # draws in the order of Compose([Pad, Jitter, RandomScaleRotate, Jitter])
        draws = random.integer_rows([jitter, jitter, len(self.scales), len(self.angles), jitter, jitter]).numpy()
        first_y, first_x, second_y, second_x = draws[:, 0], draws[:, 1], draws[:, 4], draws[:, 5]
        scales = np.array(self.scales, dtype=np.float32)[draws[:, 2]]      # the values Compose draws
        degrees = np.array(self.angles, dtype=np.float32)[draws[:, 3]]
        height, width = images.shape[-2:]
        rotated_height, rotated_width = height + self.pad, width + self.pad   # size after the first jitter
        to_rotated = pixels_to_normalised(rotated_height, rotated_width)
        rotation = np.tile(np.eye(3), (len(scales), 1, 1))
        rotation[:, :2] = scale_rotate_matrices(scales, degrees, rotated_height, rotated_width)
        # output pixel -> second crop -> rotation (normalised) -> first crop -> unpadded input pixel
        output_to_input = (pixels_to_normalised(height, width)
                           @ translations(first_x - self.pad, first_y - self.pad)
                           @ np.linalg.inv(to_rotated) @ rotation @ to_rotated
                           @ translations(second_x, second_y)
                           @ np.linalg.inv(pixels_to_normalised(height, width)))
        return affine_resample(images, output_to_input[:, :2], self.fill)


def standard_transforms(image_size: int) -> PadJitterScaleRotateJitter:
    """Lucid's standard set, scaled to the image: pad p, jitter p, scale and rotate, jitter p.

    Lucid pads 12 and jitters 8 and 4 pixels at 224 px; here p = image_size / 16 (2 px at 32 px),
    and the two jitters remove exactly the padding, so the model sees images of its input size."""
    return PadJitterScaleRotateJitter(pad=max(1, round(image_size / 16)))


def jitter_only(image_size: int) -> Compose:
    """The classic regularised baseline's transform: pad and jitter back to the original size."""
    pad = max(1, round(image_size / 16))
    return Compose([Pad(pad), Jitter(2 * pad)])


def no_transforms(images: torch.Tensor, random: PerImageRandom) -> torch.Tensor:
    return images
