"""The deck's one matplotlib style: large type and strong contrast, legible from the back of a room.

The runner calls apply_style() before every figure, so figure scripts never set rcParams.
Figures are drawn at 16:9 proportions and saved at a resolution that stays sharp on a projector.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

DECK_STYLE = {
    "figure.figsize": (10, 5.625),
    "figure.dpi": 100,
    "savefig.dpi": 160,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.08,
    "savefig.transparent": False,
    "figure.facecolor": "white",
    "font.family": "DejaVu Sans",   # ships with matplotlib: identical on every machine
    "font.size": 16,
    "axes.titlesize": 19,
    "axes.titleweight": "bold",
    "axes.labelsize": 17,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 14,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 1.4,
    "lines.linewidth": 2.6,
    "lines.markersize": 8,
    "axes.prop_cycle": matplotlib.cycler(color=[
        "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]),
    "image.cmap": "viridis",
    "svg.fonttype": "none",
}


def apply_style() -> None:
    """Reset matplotlib to defaults, then apply the deck style (idempotent)."""
    matplotlib.rcdefaults()
    matplotlib.rcParams.update(DECK_STYLE)
