"""Procedural labelled shapes: 32x32 colour images of lines, edges, arcs, circles, corners, ...

    from mechinterp.data.shapes import make_shapes, CLASS_NAMES
    images, labels = make_shapes(count=1000, seed=0)     # uint8 (N, 32, 32, 3), int64 (N,)

Each class varies what early-vision features respond to: orientation, curvature (radius and arc
span), stroke width, position, colour, and the background (flat colour, a colour gradient or a
low-contrast texture crop from the photographs scikit-image ships). A small CNN trained to tell
the classes apart therefore grows oriented edge, colour-contrast, curve and corner detectors.

Drawing is vectorised: every shape is a distance field over the pixel grid for all images of a
class at once, turned into anti-aliased coverage, so 10,000 images take about a second.
The output depends only on (count, seed, size): same seed, same bytes.
"""
from __future__ import annotations

import numpy as np

from mechinterp.data.patches import photo_bank, random_crops

CLASS_NAMES = ["line", "edge", "arc", "circle", "corner", "triangle", "square", "cross"]
FILLED_PROBABILITY = 0.35        # circles, triangles and squares are sometimes solid
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --- distance fields: params are (n,) arrays, the grid is (1, H, W); results are (n, H, W) ---

def _col(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[:, None, None]


def segment_distance(x, y, ax, ay, bx, by) -> np.ndarray:
    """Distance from each pixel to the segment A-B."""
    ax, ay, bx, by = map(_col, (ax, ay, bx, by))
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    return np.hypot(x - (ax + t * dx), y - (ay + t * dy))


def convex_signed_distance(x, y, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to convex polygons with vertices (n, K), mitred corners."""
    centre_x, centre_y = vx.mean(axis=1), vy.mean(axis=1)
    signed = None
    for k in range(vx.shape[1]):
        ax, ay = vx[:, k], vy[:, k]
        bx, by = vx[:, (k + 1) % vx.shape[1]], vy[:, (k + 1) % vx.shape[1]]
        nx, ny = by - ay, ax - bx
        length = np.maximum(np.hypot(nx, ny), 1e-6)
        outward = np.where(nx * (centre_x - ax) + ny * (centre_y - ay) > 0, -1.0, 1.0) / length
        nx, ny = nx * outward, ny * outward
        edge = _col(nx) * (x - _col(ax)) + _col(ny) * (y - _col(ay))
        signed = edge if signed is None else np.maximum(signed, edge)
    return signed


def stroke(distance: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a stroke of the given width along a distance field."""
    return np.clip(_col(width) / 2 - distance + 0.5, 0, 1)


def fill(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of the inside (signed distance < 0)."""
    return np.clip(0.5 - signed_distance, 0, 1)


def outline_or_fill(signed_distance, width, rng) -> np.ndarray:
    filled = rng.random(len(width)) < FILLED_PROBABILITY
    return np.where(_col(filled) > 0, fill(signed_distance), stroke(np.abs(signed_distance), width))


# --- one drawing function per class: (n, rng, grid, size) -> coverage (n, H, W) ---

def _centres(n, rng, size, jitter):
    return (size / 2 + rng.uniform(-jitter, jitter, n), size / 2 + rng.uniform(-jitter, jitter, n))


def _widths(n, rng):
    return rng.uniform(1.5, 3.5, n)


def draw_line(n, rng, x, y, size):
    cx, cy = _centres(n, rng, size, 4)
    angle, half = rng.uniform(0, np.pi, n), rng.uniform(7, 13, n) * size / 32
    dx, dy = half * np.cos(angle), half * np.sin(angle)
    return stroke(segment_distance(x, y, cx - dx, cy - dy, cx + dx, cy + dy), _widths(n, rng))


def draw_edge(n, rng, x, y, size):
    """A half-plane boundary: one side is the shape colour, the other the background."""
    cx, cy = _centres(n, rng, size, 6)
    angle = rng.uniform(0, 2 * np.pi, n)
    return fill(_col(np.cos(angle)) * (x - _col(cx)) + _col(np.sin(angle)) * (y - _col(cy)))


def draw_arc(n, rng, x, y, size):
    cx, cy = _centres(n, rng, size, 5)
    radius = rng.uniform(6, 13, n) * size / 32
    start, span = rng.uniform(0, 2 * np.pi, n), np.deg2rad(rng.uniform(100, 250, n))
    relative = np.mod(np.arctan2(y - _col(cy), x - _col(cx)) - _col(start), 2 * np.pi)
    ring = np.abs(np.hypot(x - _col(cx), y - _col(cy)) - _col(radius))
    ends = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in (start, start + span)]
    to_ends = np.minimum(*[np.hypot(x - _col(ex), y - _col(ey)) for ex, ey in ends])
    return stroke(np.where(relative <= _col(span), ring, to_ends), _widths(n, rng))


def draw_circle(n, rng, x, y, size):
    cx, cy = _centres(n, rng, size, 5)
    radius = rng.uniform(5, 12, n) * size / 32
    signed = np.hypot(x - _col(cx), y - _col(cy)) - _col(radius)
    return outline_or_fill(signed, _widths(n, rng), rng)


def draw_corner(n, rng, x, y, size):
    """Two strokes meeting at a vertex with an opening angle between 50 and 120 degrees."""
    cx, cy = _centres(n, rng, size, 4)
    first = rng.uniform(0, 2 * np.pi, n)
    second = first + np.deg2rad(rng.uniform(50, 120, n))
    length_1, length_2 = (rng.uniform(9, 16, n) * size / 32 for _ in range(2))
    end_1 = (length_1 * np.cos(first), length_1 * np.sin(first))
    end_2 = (length_2 * np.cos(second), length_2 * np.sin(second))
    vx, vy = cx - (end_1[0] + end_2[0]) / 3, cy - (end_1[1] + end_2[1]) / 3
    arm_1 = segment_distance(x, y, vx, vy, vx + end_1[0], vy + end_1[1])
    arm_2 = segment_distance(x, y, vx, vy, vx + end_2[0], vy + end_2[1])
    return stroke(np.minimum(arm_1, arm_2), _widths(n, rng))


def _regular_polygon(n, rng, size, sides, radius, angle_jitter, radius_jitter):
    cx, cy = _centres(n, rng, size, 4)
    angles = (rng.uniform(0, 2 * np.pi, n)[:, None] + 2 * np.pi * np.arange(sides) / sides
              + np.deg2rad(rng.uniform(-angle_jitter, angle_jitter, (n, sides))))
    radii = radius[:, None] * rng.uniform(1 - radius_jitter, 1 + radius_jitter, (n, sides))
    return cx[:, None] + radii * np.cos(angles), cy[:, None] + radii * np.sin(angles)


def draw_triangle(n, rng, x, y, size):
    radius = rng.uniform(7, 13, n) * size / 32
    vx, vy = _regular_polygon(n, rng, size, 3, radius, 12, 0.12)
    return outline_or_fill(convex_signed_distance(x, y, vx, vy), _widths(n, rng), rng)


def draw_square(n, rng, x, y, size):
    radius = rng.uniform(5, 11, n) * np.sqrt(2) * size / 32
    vx, vy = _regular_polygon(n, rng, size, 4, radius, 0, 0)
    return outline_or_fill(convex_signed_distance(x, y, vx, vy), _widths(n, rng), rng)


def draw_cross(n, rng, x, y, size):
    """Two strokes crossing near their middles at 60 to 90 degrees."""
    cx, cy = _centres(n, rng, size, 4)
    angle = rng.uniform(0, np.pi, n)
    distances = []
    for arm_angle in (angle, angle + np.deg2rad(rng.uniform(60, 90, n))):
        half = rng.uniform(7, 12, n) * size / 32
        dx, dy = half * np.cos(arm_angle), half * np.sin(arm_angle)
        distances.append(segment_distance(x, y, cx - dx, cy - dy, cx + dx, cy + dy))
    return stroke(np.minimum(*distances), _widths(n, rng))


DRAWERS = [draw_line, draw_edge, draw_arc, draw_circle, draw_corner, draw_triangle, draw_square,
           draw_cross]


# --- backgrounds and colours ---

def draw_backgrounds(n, rng, size) -> np.ndarray:
    """float32 (n, H, W, 3): 50% low-contrast photo textures, 25% flat colours, 25% gradients."""
    kind = rng.choice(3, size=n, p=[0.5, 0.25, 0.25])
    base = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    other = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    contrast = rng.uniform(0.3, 0.8, n).astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    textured = kind == 0
    crops = random_crops(photo_bank(256), size, int(textured.sum()), rng, max_stride=3)
    backgrounds = np.empty((n, size, size, 3), dtype=np.float32)
    backgrounds[:] = base[:, None, None, :]
    crops -= crops.mean(axis=(1, 2), keepdims=True)
    backgrounds[textured] += contrast[textured, None, None, None] * crops
    sloped = kind == 2
    ramp_axis = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    ramp = (np.cos(direction[sloped])[:, None, None] * ramp_axis[None, None, :]
            + np.sin(direction[sloped])[:, None, None] * ramp_axis[None, :, None])
    backgrounds[sloped] += ramp[..., None] * (other - base)[sloped, None, None, :]
    return np.clip(backgrounds, 0, 1, out=backgrounds)


def pick_colours(background_means: np.ndarray, rng) -> np.ndarray:
    """Shape colours that stand out: brighter or darker than the background, or (for saturated
    backgrounds, half of the time) its hue rotated at similar brightness, a pure colour contrast."""
    n = len(background_means)
    luminance = background_means @ LUMA
    bright = luminance[:, None] > 0.5
    random = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    darker = random * np.maximum(luminance[:, None] - 0.3, 0.05)
    lighter = np.minimum(luminance[:, None] + 0.3, 0.95) + random * (1 - np.minimum(luminance[:, None] + 0.3, 0.95))
    colours = np.where(bright, darker, lighter)
    chroma = background_means.max(axis=1) - background_means.min(axis=1)
    opponent = (chroma > 0.35) & (rng.random(n) < 0.5)
    rotated = np.where((rng.random(n) < 0.5)[:, None], np.roll(background_means, 1, axis=1),
                       np.roll(background_means, 2, axis=1))
    return np.where(opponent[:, None], rotated, colours).astype(np.float32)


def make_shapes(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`count` shape images (uint8, N x size x size x 3) and labels (int64), balanced classes."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(CLASS_NAMES))
    backgrounds = draw_backgrounds(count, rng, size)
    colours = pick_colours(backgrounds.mean(axis=(1, 2)), rng)
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5)[:, None]
    coverage = np.zeros((count, size, size), dtype=np.float32)
    for label, draw in enumerate(DRAWERS):
        chosen = np.flatnonzero(labels == label)
        coverage[chosen] = draw(len(chosen), rng, x, y, size)
    coverage = coverage[..., None]
    images = backgrounds + coverage * (colours[:, None, None, :] - backgrounds)
    noise_level = rng.uniform(0, 0.03 * 255, count).astype(np.float32)[:, None, None, None]
    images *= 255
    images += 0.5 + noise_level * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images, 0, 255, out=images).astype(np.uint8), labels.astype(np.int64)
