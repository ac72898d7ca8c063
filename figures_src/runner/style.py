"""The deck's one matplotlib style: large type and strong contrast, legible from the back of a room.

The runner calls apply_style() before every figure, so figure scripts never set rcParams.
Figures are drawn at 16:9 proportions and saved at a resolution that stays sharp on a projector.
After saving, ctx.save asks overlapping_text whether any titles, axis labels or annotations
overprint each other (a suptitle on the panels' titles), and the runner says so beside the
figure's "made" line.
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


def overlapping_text(fig) -> list[str]:
    """Each pair of titles, axis labels or annotations of a drawn figure whose text overprints the
    other (a suptitle on the panels' titles, a crowded grid's titles, labels on bars too close
    together), as "'A' overlaps 'B'", laid out as the figure is saved. Tick labels are left out:
    matplotlib thins crowded ticks itself."""
    # lay it out again at the canvas's own dpi: savefig drew at its own (160) into a cropped page,
    # and axis labels and annotations keep the positions of the last draw
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle, *fig.texts]
    for axes in fig.axes:
        texts += [axes.title, axes._left_title, axes._right_title, axes.xaxis.label, axes.yaxis.label,
                  *axes.texts]
    texts = {id(text): text for text in texts                 # a suptitle is in fig.texts too
             if text is not None and text.get_visible() and text.get_text().strip()}
    shown = [(text, text_extent(text, renderer)) for text in texts.values()]
    found = []
    for i, (text, box) in enumerate(shown):
        for other, other_box in shown[i + 1:]:
            overlap_x = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
            overlap_y = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
            if overlap_x > 2 and overlap_y > 2:        # pixels: touching edges are not overprinting
                found.append(f"{shorten(text.get_text())!r} overlaps {shorten(other.get_text())!r}")
    return found


def text_extent(text, renderer):
    """Where a text is drawn, in pixels; of an annotation its text alone, not its arrow."""
    from matplotlib.text import Text
    return Text.get_window_extent(text, renderer)


def shorten(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
