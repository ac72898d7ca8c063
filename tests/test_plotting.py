"""The shared drawing helpers (figures_src.plotting): mosaics laid out as documented, pictures
clipped to [0, 1], readable text on dark and light cells."""
import matplotlib.pyplot as plt
import numpy as np
import torch

import figures_src.runner.style  # noqa: F401  (selects the file-only Agg backend, as the runner does)
from figures_src.plotting import activation_label, as_picture, filter_mosaic, heat_map, model_label, text_colour
from mechinterp.universality.filters import filters_as_images


def test_mosaic_tiles_filters_row_by_row_with_white_gaps():
    weight = np.random.default_rng(0).normal(size=(5, 3, 3, 3))
    mosaic = filter_mosaic(weight, columns=2, pad=1)
    assert mosaic.shape == (3 * 4 - 1, 2 * 4 - 1, 3)
    np.testing.assert_allclose(mosaic[4:7, 4:7], filters_as_images(weight)[3])     # row 1, column 1
    assert (mosaic[3] == 1).all() and (mosaic[:, 3] == 1).all()                # the gaps
    assert (mosaic[8:, 4:] == 1).all()                                          # no sixth filter


def test_pictures_are_clipped_and_one_channel_images_are_two_dimensional():
    picture = as_picture(torch.tensor([[[-0.5, 0.5], [1.5, 1.0]]]))
    assert picture.shape == (2, 2) and picture.min() == 0.0 and picture.max() == 1.0
    assert as_picture(torch.rand(3, 4, 5)).shape == (4, 5, 3)


def test_heat_map_text_is_white_on_dark_cells_and_black_on_light_ones():
    fig, axis = plt.subplots()
    image = heat_map(axis, np.array([[0.0, 1.0]]), ["row"], ["dark", "light"])
    assert text_colour(image, 0.0) == "white" and text_colour(image, 1.0) == "black"
    assert [text.get_text() for text in axis.texts] == ["0.00", "1.00"]
    plt.close(fig)
    assert model_label("shapes-cnn-a") == "A" and model_label("my-own-cnn") == "my-own-cnn"


def test_activation_labels_keep_two_digits_below_ten_and_whole_numbers_above():
    assert [activation_label(v) for v in (1234.4, -12.6, 2.345, -0.04, 0.0)] == ["1234", "-13", "2.3", "-0.04", "0"]
    assert activation_label(torch.tensor(0.42)) == "0.42"


def _overlaps(legend, axis) -> bool:
    figure = axis.figure
    figure.canvas.draw()
    return legend.get_window_extent().overlaps(axis.get_window_extent())


def test_the_probe_and_geometry_legends_sit_beside_their_axes_not_on_the_data():
    """Probe accuracies climb from the bottom left to the top right, where any inside corner may
    hold a line: the deck's one rule (plotting.legend_outside) puts every such legend beside the axes."""
    from figures_src.universality_concepts import draw_probes, label_geometry
    from mechinterp.representations.probes import probe
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    features = rng.normal(size=(120, 6)) + labels[:, None] * np.linspace(0, 2, 6)
    results = {layer: probe(features * scale, labels) for layer, scale in (("a", 0.2), ("b", 1.0), ("c", 3.0))}
    figure = draw_probes(probe(features * 0.05, labels), list(results), results, results, "probes", "inputs")
    axis = figure.axes[0]
    assert not _overlaps(axis.get_legend(), axis)
    assert axis.get_xticklabels()[0].get_text() == "inputs"
    figure, axes = plt.subplots(1, 2)
    for axis in axes:
        axis.plot([0, 1], [0.1, 0.95], "o-", label="model")
    label_geometry(axes, 3.0, 0.5, 4, "pixels")
    assert not _overlaps(axes[1].get_legend(), axes[1])
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["model", "pixels", "chance"]
    plt.close("all")


def test_overprinting_titles_and_annotations_are_found_where_the_saved_figure_draws_them(tmp_path):
    """Annotations placed in points move with savefig's dpi (160 in the deck style): measured at
    the screen dpi instead, labels drawn apart were reported on top of the title."""
    import matplotlib.pyplot as plt
    from figures_src.runner.style import apply_style, overlapping_text
    apply_style()
    crowded, axes = plt.subplots(1, 2, figsize=(6, 2.2))
    for axis in axes:
        axis.set_title("a panel title\non two lines")
    crowded.suptitle("A figure title in large type", fontsize=22)
    crowded.savefig(tmp_path / "crowded.png")
    assert overlapping_text(crowded) == [
        "'A figure title in large type' overlaps 'a panel title on two lines'"] * 2
    roomy, axis = plt.subplots(layout="constrained")
    axis.bar(range(3), [1, 2, 3])
    for x, height in enumerate([1, 2, 3]):          # labels on bars, apart, under the axes' top
        axis.annotate(f"d={height}", (x, height), textcoords="offset points", xytext=(0, 4), ha="center")
    axis.set_ylim(0, 4)
    axis.set_title("One at a time")
    roomy.suptitle("Ablation")
    roomy.savefig(tmp_path / "roomy.png")
    assert overlapping_text(roomy) == []
    axis.annotate("d=2 too", (1, 2), textcoords="offset points", xytext=(0, 4), ha="center")   # on another
    roomy.savefig(tmp_path / "roomy.png")
    assert overlapping_text(roomy) == ["'d=2' overlaps 'd=2 too'"]
    # measured where this figure draws it, inside its axes (savefig's 160 dpi put it at 1.6x)
    from figures_src.runner.style import text_extent
    renderer, inside = roomy.canvas.get_renderer(), axis.get_window_extent()
    for label in axis.texts:
        box = text_extent(label, renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    plt.close("all")
