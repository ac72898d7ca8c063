"""Universality, part two: the same first-layer filters and the same curve detectors everywhere.

universality/first-layer-filters    the first layer of every zoo model, next to ICA and sparse-coding
                                    filters of natural-image patches (photographs, no task)
universality/curve-detectors        the curve-detector family the featvis tuning-curve finder finds in
                                    every zoo CNN, as radial tuning curves

Each figure reads the models its FIGURES entry declares (put your own zoo models there). Filter
sizes and channel counts come from each model's first layer (photo patches are grey for a
one-channel model); a model whose first layer is a conv is compared with ICA filters of its
shape. The curve family is searched in every layer of the model's feature_layers.
"""
import matplotlib.pyplot as plt
import numpy as np

from figures_src.plotting import filter_mosaic, model_label, no_ticks

CNNS = ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"]
# every model's first layer is shown; the dense ones (digits-mlp) are not compared with ICA, and
# torchvision's ResNet-18 (7x7 stem) is; the curve search stays on CNNS
ZOO = ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep", "shapes-resnet18",
       "digits-mlp"]

FIGURES = {
    "universality/first-layer-filters": {
        "make": "make_first_layer_filters",
        "models": ZOO,
        "params": {"quick": {"patches": 3000, "components": 16, "shown": 16},
                   "full": {"patches": 20000, "components": 32, "shown": 16}},
        "outputs": ["png"],
    },
    "universality/curve-detectors": {
        "make": "make_curve_detectors",
        "models": CNNS,
        "params": {"orientations": 36},
        "outputs": ["png"],
    },
}


# --- first-layer filters ----------------------------------------------------------------------

def make_first_layer_filters(ctx):
    from mechinterp.universality.filters import (first_layer_filters, ica_filters,
                                                  sparse_coding_filters, strongest_first)
    count, components, shown = ctx.params["patches"], ctx.params["components"], ctx.params["shown"]
    learned = {name: first_layer_filters(ctx.model(name)) for name in ctx.declared_models}
    convolutional = [name for name in ctx.declared_models if is_convolutional(ctx.model(name))]
    rng = np.random.default_rng(ctx.seed)
    shapes = sorted({filter_shape(learned[name]) for name in convolutional}, key=lambda shape: shape[::-1])
    ica_by_shape = {shape: ica_filters(photo_patches(shape, count, ctx.seed), components, ctx.seed)
                    for shape in shapes}
    display = shapes[-1]      # the largest filters (the most channels among equal sizes)
    sparse = sparse_coding_filters(photo_patches(display, count, ctx.seed), components, seed=ctx.seed)
    task_free = {"ica": ica_by_shape[display], "sparse_coding": sparse}
    panels = {**{model_label(name): strongest_first(weight) for name, weight in learned.items()},
              "ICA of photo patches": task_free["ica"], "sparse coding of patches": sparse,
              "random (baseline)": rng.standard_normal((shown, *display))}
    numbers = filter_numbers(learned, convolutional, task_free, ica_by_shape, rng, display)
    columns = int(np.ceil(len(panels) / 2))
    fig, axes = plt.subplots(2, columns, figsize=(3.5 * columns, 7.2))
    for axis, (title, weight) in zip(axes.ravel(), panels.items()):
        axis.imshow(filter_mosaic(weight[:shown], columns=4), interpolation="nearest")
        axis.set_title(f"{title} ({'×'.join(str(s) for s in weight.shape[-2:])})", fontsize=14)
    for axis in axes.ravel():
        no_ticks(axis)
    fig.suptitle("First layers of every zoo model, and filters learned from photographs with no task")
    fig.tight_layout()
    ctx.save(fig)
    numbers["patches"] = count
    return numbers


def is_convolutional(model):
    from torch import nn
    from mechinterp.universality.filters import first_layer_module
    return isinstance(first_layer_module(model), nn.Conv2d)


def filter_shape(weight):
    """(channels, height, width) of one filter of a bank (out, C, kh, kw)."""
    return tuple(int(n) for n in weight.shape[1:])


def photo_patches(shape, count, seed):
    """Photograph patches of one filter's (channels, size, size): grey for a one-channel model."""
    from mechinterp.data import natural_patches
    channels, size = shape[0], shape[-1]
    patches = natural_patches(size, count, seed=seed, grey=channels == 1)
    return patches if patches.shape[1] == channels else patches.mean(1, keepdim=True).expand(-1, channels, -1, -1)


def filter_numbers(learned, convolutional, task_free, ica_by_shape, rng, display):
    """Orientation selectivity of every filter bank, and how close each CNN's filters come to ICA
    filters of their shape, against random filters of the same shape."""
    from mechinterp.universality.filters import best_match_similarity, filter_orientedness
    numbers = {"orientation_selectivity": {name: float(filter_orientedness(weight).mean())
                                           for name, weight in {**learned, **task_free}.items()},
               "best_match_with_ica": {}, "random_best_match_with_ica": {}}
    for name in convolutional:
        reference = ica_by_shape[filter_shape(learned[name])]
        numbers["best_match_with_ica"][name] = float(best_match_similarity(learned[name], reference).mean())
        numbers["random_best_match_with_ica"][name] = float(
            best_match_similarity(rng.standard_normal(learned[name].shape), reference).mean())
    numbers["random_orientation_selectivity"] = float(
        filter_orientedness(rng.standard_normal((256, *display))).mean())
    return numbers


# --- curve detectors across the zoo -------------------------------------------------------------

def make_curve_detectors(ctx):
    from mechinterp.featvis.tuning import find_detector_family
    numbers = {"models": {}, "chosen": {}}
    fig, axes = plt.subplots(1, len(ctx.declared_models), figsize=(4 * len(ctx.declared_models), 4.9), squeeze=False,
                             subplot_kw={"projection": "polar"}, layout="constrained")
    for axis, name in zip(axes[0], ctx.declared_models):
        model = ctx.model(name)
        families = {layer: find_detector_family(model, layer, ctx.params["orientations"])
                    for layer in model.feature_layers}
        numbers["models"][model_label(name)] = {
            layer: {"curve": family.kinds.count("curve"), "edge": family.kinds.count("edge"),
                    "curve_coverage": family.coverage["curve"], "edge_coverage": family.coverage["edge"]}
            for layer, family in families.items()}
        # Each model's curve family lives at its own depth: show the layer with the most.
        layer = max(families, key=lambda l: curve_family_size(families[l]))
        numbers["chosen"][model_label(name)] = {"layer": layer, **numbers["models"][model_label(name)][layer]}
        draw_tuning_petals(axis, families[layer])
        count = families[layer].kinds.count("curve")
        axis.set_title(f"{model_label(name)} · {layer}\n{count} curve detectors", fontsize=15, pad=14)
    fig.suptitle("The curve-detector family in every CNN of the zoo")
    fig.get_layout_engine().set(wspace=0.12)
    ctx.save(fig)
    numbers["mean_curve_coverage"] = float(np.mean([c["curve_coverage"] for c in numbers["chosen"].values()]))
    return numbers


def curve_family_size(family):
    """Rank layers by curve detectors found, then by how much of the circle they cover."""
    return family.kinds.count("curve"), family.coverage["curve"]


def draw_tuning_petals(axis, family):
    """One petal per curve detector: its response against stimulus orientation, scaled to its
    peak, coloured by preferred orientation (a cyclic colour map)."""
    curves = family.curves["curve"]
    theta = np.deg2rad(np.r_[curves.angles.numpy(), curves.angles.numpy()[:1]])
    colours = plt.get_cmap("twilight")
    for unit, kind, preferred in zip(family.units, family.kinds, family.preferred.tolist()):
        if kind != "curve":
            continue
        response = curves.responses[unit].clamp_min(0).numpy()
        response = response / max(response.max(), 1e-12)
        axis.plot(theta, np.r_[response, response[:1]], color=colours(preferred / 360), linewidth=2)
    axis.set_yticks([])
    axis.set_xticks(np.deg2rad([0, 90, 180, 270]), ["0°", "90°", "180°", "270°"], fontsize=10)
