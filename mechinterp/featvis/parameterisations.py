"""How the optimiser describes an image: the parameterisation is the first prior of feature visualisation.

An image batch is built in three stages, each invertible so a given image can be a starting point:

    spatial (pixels, or a Fourier spectrum scaled by 1/frequency)
      -> colour (identity, or the square root of the colour correlation: decorrelated colour)
      -> squash (sigmoid into [0, 1], or clipping)

Optimising raw pixels lets high frequencies grow as fast as low ones, so gradient ascent "cheats"
with noise. Scaling the spectrum by 1/frequency preconditions the optimisation so every frequency
moves at a similar rate in the image, and decorrelating colour does the same across channels
(Olah et al. 2017, "Preconditioning and Parameterization"; Lucid's param/spatial.py, param/color.py).

    image = ImageParameterisation((16, 3, 32, 32), fourier=True, decorrelate=True, seeds=range(16))
    batch = image()                      # (16, 3, 32, 32) in [0, 1], differentiable
    start = ImageParameterisation.from_images(photo_batch)   # image() reproduces photo_batch

Image i's random start depends only on seeds[i], so a batch of N renders equals N single renders.
Grey models (one input channel) skip colour decorrelation, even when asked for it (decorrelate=True
and a matrix estimated from grey data are a no-op); the built-in ImageNet matrix is for three.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mechinterp.device import model_device

# Lucid's square root of the ImageNet colour correlation (rows: R, G, B; columns: decorrelated axes).
IMAGENET_COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                                 [0.27, 0.00, -0.05],
                                                 [0.27, -0.09, 0.03]])
# Lucid and Lucent divide the Fourier image by this constant; it keeps the start near mid-grey.
FOURIER_OUTPUT_DIVISOR = 4.0
SIGMOID_EPSILON = 1e-4


def seeded_normal(shape_per_image: Sequence[int], seeds: Sequence[int], sd: float) -> torch.Tensor:
    """A (len(seeds), *shape_per_image) normal tensor where row i comes from seeds[i] alone."""
    rows = [torch.randn(tuple(shape_per_image), generator=torch.Generator().manual_seed(int(s)))
            for s in seeds]
    return torch.stack(rows) * sd


def estimate_colour_correlation_sqrt(images: torch.Tensor) -> torch.Tensor:
    """Square root (U sqrt(S)) of the channel covariance of a dataset's pixels, as Lucid's RGB
    constant: (C, C) for (N, C, H, W) images of any channel count ((1, 1) for grey images, which
    ImageParameterisation then leaves alone: one channel has no colours to decorrelate)."""
    if images.dim() != 4:
        raise ValueError(f"need a batch of images (N, C, H, W), got shape {tuple(images.shape)}")
    channels = images.shape[1]
    pixels = images.transpose(0, 1).reshape(channels, -1).double()
    covariance = torch.cov(pixels).reshape(channels, channels)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    order = eigenvalues.argsort(descending=True)
    root = eigenvectors[:, order] * eigenvalues[order].clamp_min(0).sqrt()
    return root.float()


def colour_for(channels: int, decorrelate: bool, matrix: torch.Tensor | None) -> "ColourDecorrelation | None":
    """The colour stage for images of `channels`: none for one channel (nothing to decorrelate) or
    when not asked; Lucid's ImageNet matrix for three; a given matrix must be channels x channels."""
    if not decorrelate or channels == 1:
        return None
    if matrix is None:
        return ColourDecorrelation() if channels == 3 else None
    if tuple(matrix.shape) != (channels, channels):
        raise ValueError(f"colour_correlation_sqrt has shape {tuple(matrix.shape)} but the images "
                         f"have {channels} channels: estimate it from images of {channels} channels "
                         "(estimate_colour_correlation_sqrt) or pass decorrelate=False")
    return ColourDecorrelation(matrix)


class ColourDecorrelation(nn.Module):
    """Map decorrelated colour axes to RGB with the colour correlation's square root (columns normalised)."""

    def __init__(self, correlation_sqrt: torch.Tensor = IMAGENET_COLOUR_CORRELATION_SQRT):
        super().__init__()
        matrix = correlation_sqrt / correlation_sqrt.norm(dim=0).max()
        self.register_buffer("matrix", matrix.float())

    def to_rgb(self, decorrelated: torch.Tensor) -> torch.Tensor:
        return mix_channels(self.matrix, decorrelated)

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        return mix_channels(torch.linalg.inv(self.matrix), rgb)


def mix_channels(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C', H, W): every pixel's channel vector multiplied by `matrix` (C', C).

    One broadcast matrix product on (B, C, H*W), whose result stays contiguous; einsum returns a
    permuted view here, which the sigmoid and the resampling after it then copy."""
    return (matrix @ images.flatten(2)).view(images.shape[0], matrix.shape[0], *images.shape[2:])


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """1 / frequency ** decay_power on the rfft2 grid (lowest frequency clamped to 1 / max side)."""
    frequency_y = torch.fft.fftfreq(height)[:, None]
    frequency_x = torch.fft.rfftfreq(width)[None, :]
    frequency = (frequency_y ** 2 + frequency_x ** 2).sqrt()
    return 1.0 / frequency.clamp_min(1.0 / max(height, width)) ** decay_power


class PixelSpace(nn.Module):
    """The naive parameterisation: one free number per pixel and channel."""

    def __init__(self, shape: Sequence[int], seeds: Sequence[int], sd: float):
        super().__init__()
        self.values = nn.Parameter(seeded_normal(shape[1:], seeds, sd))

    def forward(self) -> torch.Tensor:
        return self.values

    def set_from_spatial(self, spatial: torch.Tensor) -> None:
        with torch.no_grad():
            self.values.copy_(spatial)


class FourierSpace(nn.Module):
    """Real and imaginary parts of an rfft2 spectrum, scaled by 1/frequency before the inverse FFT."""

    def __init__(self, shape: Sequence[int], seeds: Sequence[int], sd: float, decay_power: float = 1.0):
        super().__init__()
        _, channels, height, width = shape
        self.size = (height, width)
        self.register_buffer("scale", spectrum_scale(height, width, decay_power))
        # the output divisor folded into the spectrum's scale: one pass over the batch fewer per
        # step, and the same numbers (dividing by a power of two is exact and commutes with the FFT)
        self.register_buffer("output_scale", self.scale / FOURIER_OUTPUT_DIVISOR)
        spectrum_shape = (channels, height, width // 2 + 1, 2)
        self.spectrum = nn.Parameter(seeded_normal(spectrum_shape, seeds, sd))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.output_scale
        return torch.fft.irfft2(spectrum, s=self.size, norm="ortho")

    def set_from_spatial(self, spatial: torch.Tensor) -> None:
        spectrum = torch.fft.rfft2(spatial * FOURIER_OUTPUT_DIVISOR, norm="ortho") / self.scale
        with torch.no_grad():
            self.spectrum.copy_(torch.view_as_real(spectrum))


def squash(values: torch.Tensor, method: str) -> torch.Tensor:
    """Map unconstrained values into the valid range [0, 1]."""
    if method == "sigmoid":
        return torch.sigmoid(values)
    if method == "clip":
        return values.clamp(0, 1)
    raise ValueError(f"unknown squash {method!r}: use 'sigmoid' or 'clip'")


def unsquash(images: torch.Tensor, method: str) -> torch.Tensor:
    """Inverse of squash (images clamped just inside (0, 1) so the logit is finite)."""
    if method == "sigmoid":
        return torch.logit(images.clamp(SIGMOID_EPSILON, 1 - SIGMOID_EPSILON))
    return images


class ImageParameterisation(nn.Module):
    """A batch of images = squash(colour(spatial())), all differentiable; call it to get the batch."""

    def __init__(self, shape: Sequence[int], fourier: bool = True, decorrelate: bool = True,
                 squash: str = "sigmoid", sd: float = 0.01, seeds: Sequence[int] | None = None,
                 decay_power: float = 1.0, colour_correlation_sqrt: torch.Tensor | None = None):
        super().__init__()
        if len(shape) != 4:
            raise ValueError(f"shape must be (batch, channels, height, width), got {tuple(shape)}")
        seeds = list(range(shape[0])) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != shape[0]:
            raise ValueError(f"got {len(seeds)} seeds for a batch of {shape[0]} images")
        self.shape = tuple(int(s) for s in shape)
        self.squash_method = squash
        self.spatial = FourierSpace(shape, seeds, sd, decay_power) if fourier else PixelSpace(shape, seeds, sd)
        self.colour = colour_for(self.shape[1], decorrelate, colour_correlation_sqrt)

    def forward(self) -> torch.Tensor:
        values = self.spatial()
        if self.colour is not None:
            values = self.colour.to_rgb(values)
        return squash(values, self.squash_method)

    @classmethod
    def from_images(cls, images: torch.Tensor, **options) -> "ImageParameterisation":
        """A parameterisation whose output reproduces `images` (N, C, H, W in [0, 1])."""
        parameterisation = cls(tuple(images.shape), **options).to(images.device)
        parameterisation.set_images(images)
        return parameterisation

    def set_images(self, images: torch.Tensor) -> None:
        """Move the parameters so that forward() returns `images` (up to the squash's clamping)."""
        values = unsquash(images.to(self.spatial_device), self.squash_method)
        if self.colour is not None:
            values = self.colour.from_rgb(values)
        self.spatial.set_from_spatial(values)

    @property
    def spatial_device(self) -> torch.device:
        return model_device(self)
