"""Drawing helpers every figure script shares: bare axes, images, signed maps, filter mosaics and
annotated heat maps. runner/style.py sets the deck's matplotlib style; this module draws with it.

    from figures_src.plotting import heat_map, no_ticks, show_image, show_signed
    show_image(axis, image_chw, "title")          # (C, H, W) in [0, 1]; one channel is drawn grey
    show_signed(axis, kernel)                     # RdBu_r, symmetric around zero
    axis.imshow(filter_mosaic(weight, columns=4))  # (out, in, h, w) filters tiled, scaled to grey
    legend_outside(axis)                          # the one legend rule: beside the axes, off the data

Declares no FIGURES, so the runner does not treat it as a figure script.
"""
from __future__ import annotations

import numpy as np
import torch

SIGNED = "RdBu_r"
MODEL_LABELS = {"shapes-cnn-a": "A", "shapes-cnn-a-seed1": "A seed 1", "shapes-cnn-wide": "Wide",
                "shapes-cnn-deep": "Deep", "digits-mlp": "Digits MLP", "shapes-resnet18": "ResNet-18",
                "shapes-googlenet": "GoogLeNet"}
EXCITE, INHIBIT = "#B2182B", "#2166AC"     # the red and blue ends of RdBu_r


def model_label(name: str) -> str:
    """The short name slides use for a zoo model (a model not listed keeps its own name)."""
    return MODEL_LABELS.get(name, name)


def input_name(model) -> str:
    """What a model's inputs are called on a slide: "pixels" for an image model (input_shape
    (C, H, W)), "inputs" for one that takes vectors."""
    return "pixels" if len(getattr(model, "input_shape", None) or ()) == 3 else "inputs"


def activation_label(value: float) -> str:
    """An activation as a panel title: whole numbers from 10 up, two significant digits below
    ("0.42", "-1.3"), so a small-scale model's values do not all read "0"."""
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def legend_outside(axis, **options):
    """The deck's legend: to the right of the axes, top-aligned, so it never covers a line or a
    point wherever the data lies (a legend inside picks a corner the data may reach later)."""
    return axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **options)


def no_ticks(axis) -> None:
    """An axis drawn as a bare picture: no ticks, no frame."""
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def as_picture(image_chw) -> np.ndarray:
    """(C, H, W) tensor or array -> (H, W, 3) or (H, W) array clipped to [0, 1] for imshow."""
    image = np.asarray(torch.as_tensor(image_chw).detach().cpu().float()).transpose(1, 2, 0)
    image = np.clip(image, 0, 1)
    return image[..., 0] if image.shape[-1] == 1 else image


def show_image(axis, image_chw, title: str | None = None, grey: str = "gray", fontsize: int = 14) -> None:
    """An input-space image (C, H, W) in [0, 1]; one-channel images use the `grey` colour map."""
    picture = as_picture(image_chw)
    axis.imshow(picture, cmap=grey if picture.ndim == 2 else None, vmin=0, vmax=1,
                interpolation="nearest")
    no_ticks(axis)
    if title:
        axis.set_title(title, fontsize=fontsize, fontweight="normal")


def show_signed(axis, image, limit: float | None = None) -> None:
    """A signed 2-D map in RdBu_r, symmetric around zero (red excites, blue inhibits)."""
    image = np.asarray(torch.as_tensor(image).detach().cpu(), dtype=float)
    limit = limit or float(np.abs(image).max()) or 1.0
    axis.imshow(image, cmap=SIGNED, vmin=-limit, vmax=limit, interpolation="nearest")
    no_ticks(axis)


def filter_mosaic(weight, columns: int, pad: int = 1) -> np.ndarray:
    """Tile filters into one image with white gaps, `columns` filters per row (the last row filled
    with white); each filter is drawn by mechinterp.universality.filters.filters_as_images (scaled
    around grey). torchvision's make_grid lays them out; its outer frame is cut off."""
    from torchvision.utils import make_grid
    from mechinterp.universality.filters import filters_as_images
    images = torch.from_numpy(filters_as_images(torch.as_tensor(weight).detach().cpu().numpy()))
    rows = int(np.ceil(len(images) / columns))
    filler = torch.ones((rows * columns - len(images), *images.shape[1:]), dtype=images.dtype)
    tiles = torch.cat([images, filler]).permute(0, 3, 1, 2)
    if len(tiles) == 1:                 # make_grid returns a single image as it is
        return tiles[0].permute(1, 2, 0).numpy()
    grid = make_grid(tiles, nrow=columns, padding=pad, pad_value=1.0).permute(1, 2, 0)
    return grid[pad:len(grid) - pad, pad:grid.shape[1] - pad].numpy()


def heat_map(axis, matrix, rows, columns, vmin=0.0, vmax=1.0, cmap="viridis", digits=2):
    """An annotated matrix: one cell per value, its number written in a readable colour."""
    image = axis.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    for (i, j), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=12,
                      color=text_colour(image, value))
    return image


def text_colour(image, value) -> str:
    """White on dark cells, black on light ones (dark grey on empty NaN cells)."""
    if not np.isfinite(value):
        return "#444444"
    red, green, blue, _ = image.cmap(image.norm(value))
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"


def class_scatter(axis, points, labels, class_names, title: str) -> None:
    """2-D points coloured by class, one legend entry per class."""
    import matplotlib.pyplot as plt
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        chosen = labels == index
        axis.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colours(index), label=name)
    axis.set_title(title)
    no_ticks(axis)
