"""Synthetic stimuli: edges, lines and curves drawn at chosen orientations and curvatures.

The curve-detector papers test what a unit detects with images drawn to order: a curve swept
through every orientation (and curvature), so the response can be read as a tuning curve
(Cammarata et al. 2020, "Synthetic Curves"). Every stimulus is an anti-aliased distance field
on the pixel grid, so sub-pixel changes of angle change the image smoothly.

Orientation convention: the angle (degrees, counter-clockwise, 0 = pointing right) of the normal
that points from the stimulus centre to the bright side of an edge, or to the convex side of a
curve (away from the circle the arc belongs to). All stimuli are 360-degree periodic.

    angles, images = orientation_sweep("curve", size=32, count=36, curvature=0.1)  # (36, 1, 32, 32)
    edge = edge_image(32, angle=45.0)                                             # (32, 32)
"""
from __future__ import annotations

import math

import torch

DEFAULT_WIDTH = 2.0           # stroke width of lines and curves, pixels
DEFAULT_ARC_LENGTH = 12.0     # length of lines and curves, pixels


def pixel_grid(size: int | tuple[int, int], centre: tuple[float, float] | None = None):
    """Pixel-centre coordinates (x to the right, y upwards) relative to the stimulus centre."""
    height, width = (size, size) if isinstance(size, int) else size
    centre_y, centre_x = centre if centre is not None else ((height - 1) / 2, (width - 1) / 2)
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                torch.arange(width, dtype=torch.float64), indexing="ij")
    return cols - centre_x, centre_y - rows


def unit_normal(angle_degrees: float) -> tuple[float, float]:
    radians = math.radians(angle_degrees)
    return math.cos(radians), math.sin(radians)


def coverage(distance: torch.Tensor, width: float) -> torch.Tensor:
    """Anti-aliased coverage of a stroke of `width` pixels along a distance field."""
    return (width / 2 - distance + 0.5).clamp(0, 1)


def edge_image(size, angle: float, centre=None, softness: float = 1.0) -> torch.Tensor:
    """A half-plane: bright on the side the normal at `angle` points to, dark on the other."""
    x, y = pixel_grid(size, centre)
    normal_x, normal_y = unit_normal(angle)
    return (0.5 + (x * normal_x + y * normal_y) / softness).clamp(0, 1).float()


def line_distance(x, y, angle: float, length: float) -> torch.Tensor:
    """Distance to a segment through the centre, perpendicular to the normal at `angle`."""
    normal_x, normal_y = unit_normal(angle)
    along = (-normal_y * x + normal_x * y).clamp(-length / 2, length / 2)
    return torch.hypot(x + normal_y * along, y - normal_x * along)


def arc_distance(x, y, angle: float, radius: float, length: float) -> torch.Tensor:
    """Distance to an arc of a circle of `radius` whose midpoint is the centre and whose convex
    side faces the normal at `angle` (so the circle's centre lies at -radius * normal)."""
    normal_x, normal_y = unit_normal(angle)
    circle_x, circle_y = -radius * normal_x, -radius * normal_y
    relative_x, relative_y = x - circle_x, y - circle_y
    half_span = min(length / (2 * radius), math.pi)
    offset = torch.atan2(normal_x * relative_y - normal_y * relative_x,
                         normal_x * relative_x + normal_y * relative_y)
    ring = (torch.hypot(relative_x, relative_y) - radius).abs()
    ends = []
    for side in (-1, 1):
        end_angle = math.atan2(normal_y, normal_x) + side * half_span
        ends.append(torch.hypot(relative_x - radius * math.cos(end_angle),
                                relative_y - radius * math.sin(end_angle)))
    return torch.where(offset.abs() <= half_span, ring, torch.minimum(*ends))


def curve_image(size, angle: float, curvature: float, centre=None, width: float = DEFAULT_WIDTH,
                length: float = DEFAULT_ARC_LENGTH) -> torch.Tensor:
    """A bright curve of the given curvature (1 / radius in pixels; 0 is a straight line)."""
    x, y = pixel_grid(size, centre)
    if curvature <= 0:
        distance = line_distance(x, y, angle, length)
    else:
        distance = arc_distance(x, y, angle, 1.0 / curvature, length)
    return coverage(distance, width).float()


def to_channels(images: torch.Tensor, channels: int, foreground=1.0, background=0.0) -> torch.Tensor:
    """(N, H, W) coverage -> (N, channels, H, W) images; colours are a number or one per channel."""
    foreground = torch.as_tensor(foreground, dtype=torch.float32).reshape(-1, 1, 1)
    background = torch.as_tensor(background, dtype=torch.float32).reshape(-1, 1, 1)
    coloured = background + (foreground - background) * images[:, None]
    return coloured.expand(-1, channels, -1, -1).contiguous() if coloured.shape[1] == 1 else coloured


def orientation_sweep(kind: str, size, count: int = 36, curvature: float = 0.1, channels: int = 1,
                      centre=None, foreground=1.0, background=0.0, **drawing) -> tuple[torch.Tensor, torch.Tensor]:
    """(angles in degrees (count,), images (count, channels, H, W)) for kind 'edge', 'line' or 'curve'."""
    angles = torch.arange(count, dtype=torch.float32) * (360.0 / count)
    if kind == "edge":
        drawn = [edge_image(size, float(a), centre, **drawing) for a in angles]
    elif kind in ("line", "curve"):
        bend = 0.0 if kind == "line" else curvature
        drawn = [curve_image(size, float(a), bend, centre, **drawing) for a in angles]
    else:
        raise ValueError(f"unknown stimulus kind {kind!r}: use 'edge', 'line' or 'curve'")
    return angles, to_channels(torch.stack(drawn), channels, foreground, background)


# --- texture concepts: gratings and noise -------------------------------------------------------
# Concept sets for TCAV need textures that no dataset class is: sinusoidal stripes of random
# orientation, period, phase and colour, and uniform noise. Drawn with a numpy Generator, so the
# caller's stream of random numbers decides them (and nothing global is reseeded).

def grating(size, angle_radians: float, period: float, phase: float = 0.0) -> torch.Tensor:
    """(H, W) stripes cos(2π (x cos θ + y sin θ) / period + phase) in [-1, 1], pixel coordinates."""
    height, width = (size, size) if isinstance(size, int) else size
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing="ij")
    along = x * math.cos(angle_radians) + y * math.sin(angle_radians)
    return torch.cos(2 * math.pi * along / period + phase).float()


def random_gratings(count: int, rng, shape=(3, 32, 32), periods=(4.0, 10.0)) -> torch.Tensor:
    """(count, C, H, W) gratings 0.5 + 0.5 · colour · stripes: orientation uniform in [0, π),
    period uniform in `periods` (pixels), phase uniform, one colour in [0.2, 1] per channel."""
    channels, height, width = shape
    angles, steps = rng.uniform(0, math.pi, count), rng.uniform(*periods, count)
    phases, colours = rng.uniform(0, 2 * math.pi, count), rng.uniform(0.2, 1.0, (count, channels))
    stripes = torch.stack([grating((height, width), a, p, f) for a, p, f in zip(angles, steps, phases)])
    colours = torch.as_tensor(colours, dtype=torch.float32)[:, :, None, None]
    return 0.5 + 0.5 * stripes[:, None] * colours


def uniform_noise(count: int, rng, shape=(3, 32, 32)) -> torch.Tensor:
    """(count, C, H, W) pixels drawn uniformly from [0, 1]."""
    return torch.as_tensor(rng.uniform(0, 1, (count, *shape)), dtype=torch.float32)
