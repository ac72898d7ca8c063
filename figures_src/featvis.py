"""Feature-visualisation figures: what makes a unit of a model fire, found by optimisation.

featvis/from-noise          one unit's image at several optimisation steps, starting from noise
featvis/regularisation      the same unit: no prior / L2 + TV + jitter / Fourier + decorrelation +
                            transforms, with activation reached and high-frequency energy
featvis/layer-grid          every channel of every conv layer, each layer in one batched render
                            (a model with more than 4: its feature_layers; 64 channels each at most)
featvis/dataset-examples    units' visualisations beside the dataset crops that excite them most,
                            in the deepest conv layer whose receptive field fits the image (or params "layer")
featvis/diversity           four images of one unit with and without a diversity objective
featvis/deepdream           a scikit-image photograph before and after dreaming with a layer
featvis/tuning              radial tuning curves of the curve-detector family the finder labels

Each figure reads the first model its FIGURES entry declares (shapes-cnn-a here; put your own
zoo model there) and that model's own test data (its zoo entry's dataset, ctx.dataset).
The "featured" unit is the strongest curve detector of the feature layer with the largest curve
family (the finder in mechinterp.featvis.tuning), so several figures follow the same unit. Units
are the centre neurons of the conv layer feeding that feature layer, visualised before their ReLU
(so no unit starts switched off) with a light L2 pull towards grey outside what they see. A
3-channel model's colours are decorrelated with the square root of its data's own colour
covariance; other channel counts (grey) are rendered without colour decorrelation. "Sigmas beyond the dataset maximum" compares the
optimised activation with the unit's strongest response anywhere in the test images, in units of
the spread of those strongest responses.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.gridspec import GridSpec

from figures_src.plotting import activation_label, show_image

# the render schedule most featvis figures share: short and bold for quick, long and gentle for full
QUICK_RENDER = {"steps": 16, "learning_rate": 0.1, "images": 300}
FULL_RENDER = {"steps": 256, "learning_rate": 0.05, "images": 2000}

FIGURES = {
    "featvis/from-noise": {
        "make": "make_from_noise", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {"snapshots": [0, 4, 12, 24], "learning_rate": 0.1, "images": 300},
                   "full": {"snapshots": [0, 8, 32, 128, 256], "learning_rate": 0.05, "images": 2000}},
    },
    "featvis/regularisation": {
        "make": "make_regularisation", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {**QUICK_RENDER, "steps": 24, "l2": 1.0, "tv": 2.0},
                   "full": {**FULL_RENDER, "l2": 1.0, "tv": 2.0}},
    },
    "featvis/layer-grid": {
        "make": "make_layer_grid", "models": ["shapes-cnn-a"], "outputs": ["png"],
        # at most `layers` layers and their first `units` channels: a wide model's grid stays legible
        "params": {"quick": {**QUICK_RENDER, "steps": 12, "layers": 4, "units": 64},
                   "full": {**FULL_RENDER, "layers": 4, "units": 64}},
    },
    "featvis/dataset-examples": {
        "make": "make_dataset_examples", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {**QUICK_RENDER, "units": 3, "examples": 5},
                   "full": {**FULL_RENDER, "units": 4, "examples": 6}},
    },
    "featvis/diversity": {
        "make": "make_diversity", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {**QUICK_RENDER, "batch": 4, "weight": 30.0},
                   "full": {**FULL_RENDER, "batch": 4, "weight": 30.0}},
    },
    "featvis/deepdream": {
        "make": "make_deepdream", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {"photo": "astronaut", "size": 64, "octaves": 2, "steps": 3, "step_size": 0.02},
                   "full": {"photo": "astronaut", "size": 160, "octaves": 3, "steps": 15, "step_size": 0.006}},
    },
    "featvis/tuning": {
        "make": "make_tuning", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {**QUICK_RENDER, "angles": 24, "steps": 12},
                   "full": {**FULL_RENDER, "angles": 72}},
    },
}

L2_WEIGHT = 0.5          # pull towards grey for neuron visualisations (calm outside the receptive field)


# --- data, units and measures ---

def data_colour_image(ctx, model, batch):
    """Fourier image; an RGB model's colours are decorrelated with its data's own colour
    covariance (a grey model has no colours to decorrelate)."""
    from mechinterp.featvis.parameterisations import ImageParameterisation, estimate_colour_correlation_sqrt
    if model.input_shape[0] != 3:
        return ImageParameterisation((batch, *model.input_shape), fourier=True, decorrelate=False, seeds=range(batch))
    root = estimate_colour_correlation_sqrt(ctx.counted_dataset("test", "images", model.zoo_name).images)
    return ImageParameterisation((batch, *model.input_shape), fourier=True, decorrelate=True, seeds=range(batch),
                                 colour_correlation_sqrt=root)


def curve_family(ctx, model, count=36):
    """(layer index, family): the layer after the first with the most curve detectors (a model
    with no conv layer, whose units see no image position, is told so first)."""
    from mechinterp.featvis.tuning import find_detector_family
    ctx.conv_layers(model)
    families = [(index, find_detector_family(model, model.feature_layers[index], count=count))
                for index in range(1, len(model.feature_layers))]
    return max(families, key=lambda pair: (pair[1].kinds.count("curve"), -pair[0]))


def featured_unit(ctx, model):
    """(conv layer, unit): the strongest curve detector of the richest curve family (else the
    strongest responder there), in the conv feeding that family's feature layer."""
    _, family = curve_family(ctx, model)
    peaks = family.curves["curve"].responses.max(1).values
    curve_units = [u for u, kind in zip(family.units, family.kinds) if kind == "curve"]
    unit = max(curve_units, key=lambda u: float(peaks[u])) if curve_units else int(peaks.argmax())
    return feeding_conv(ctx, model, family.layer), unit


def feeding_conv(ctx, model, layer):
    """The conv whose output `layer` reads: the last of model.conv_layers at or before the end of
    `layer` in module order (feature_layers and conv_layers may differ in count and names); the
    figure's message when there is none (an MLP, or a layer before the first conv)."""
    order = [name for name, _ in model.named_modules()]
    end = max(i for i, name in enumerate(order) if name == layer or name.startswith(layer + "."))
    feeding = [conv for conv in ctx.conv_layers(model) if order.index(conv) <= end]
    if not feeding:
        raise ctx.wrong_layer_kind(model, "a conv layer at or before the layer it reads", layer=layer)
    return feeding[-1]


def neuron_values(model, layer, units, images):
    """Activation of image i's centre neuron of unit units[i]."""
    from mechinterp.featvis import objectives as obj
    from mechinterp.device import model_device
    from mechinterp.featvis.render import evaluate
    device = model_device(model)
    return evaluate(model, obj.neuron(layer, list(units)), images.to(device)).cpu()


def dataset_strongest(model, layer, images):
    """Per unit: the strongest response anywhere in the dataset, and the spread (std) over images
    of each image's strongest response: the scale for 'sigmas beyond the dataset maximum'."""
    from mechinterp.device import model_device
    from mechinterp.hooks import run_with_cache
    device = model_device(model)
    per_image = torch.cat([run_with_cache(model, images[start:start + 500].to(device), [layer])[1][layer]
                           .flatten(2).max(2).values.cpu() for start in range(0, len(images), 500)])
    return per_image.max(0).values, per_image.std(0)


def sigmas_beyond(values, units, maximum, spread):
    index = torch.as_tensor(list(units))
    return (values - maximum[index]) / spread[index].clamp_min(1e-6)


def high_frequency_fraction(images):
    """Share of each image's (mean-removed) spectral power above half the Nyquist frequency."""
    images = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(images).abs().pow(2).sum(1)
    fy = torch.fft.fftfreq(images.shape[-2])[:, None]
    fx = torch.fft.fftfreq(images.shape[-1])[None, :]
    high = (fy ** 2 + fx ** 2).sqrt() > 0.25
    return (power * high).flatten(1).sum(1) / power.flatten(1).sum(1).clamp_min(1e-12)


def visualise(ctx, model, layer, units, steps, extra=None, image=None, snapshots=()):
    """Image i maximises the centre neuron of unit units[i] with the full recipe (Fourier image,
    data-decorrelated colour, Lucid's transforms) and a light L2 pull towards grey."""
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import RenderSettings, render
    goal = obj.neuron(layer, list(units)) - L2_WEIGHT * obj.l2() + (extra if extra is not None else 0)
    return render(model, goal, steps=steps, image=image or data_colour_image(ctx, model, len(units)),
                  snapshot_steps=snapshots, progress=False,
                  settings=RenderSettings(learning_rate=ctx.params["learning_rate"]))


def grid_layers(ctx, model, most: int) -> list[str]:
    """The conv layers; for a model with more than `most` (ResNet-18 has 20), the layers its zoo
    entry names as feature_layers (its stages) instead; evenly spaced down to `most`, first and
    last kept."""
    layers = ctx.conv_layers(model)
    if len(layers) > most and model.feature_layers:
        layers = list(model.feature_layers)
    if len(layers) > most:
        layers = [layers[round(i * (len(layers) - 1) / max(1, most - 1))] for i in range(most)]
    return layers


def crop_size(model, layer):
    """The receptive field plus a small margin, at most the whole image."""
    from mechinterp.featvis.dataset_examples import receptive_field
    return min(model.input_shape[-1], receptive_field(model, layer, model.input_shape).size[0] + 4)


def centre_crop(images, size):
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top:top + size, left:left + size]


# --- drawing ---

def draw_square_grid(fig, cell, images, title):
    side = int(np.ceil(np.sqrt(len(images))))
    inner = cell.subgridspec(side, side, wspace=0.05, hspace=0.05)
    axes = [fig.add_subplot(inner[index // side, index % side]) for index in range(side * side)]
    for index, ax in enumerate(axes):
        if index < len(images):
            show_image(ax, images[index])
        else:
            ax.axis("off")
    left, right = axes[0].get_position(), axes[side - 1].get_position()
    fig.text((left.x0 + right.x1) / 2, left.y1 + 0.015, title, ha="center", va="bottom",
             fontsize=15, fontweight="bold")


def draw_radial_tuning(ax, curves, units, family):
    """Each unit's response (normalised to its peak) against stimulus orientation, on a circle."""
    angles = np.deg2rad(np.append(curves.angles.numpy(), curves.angles[0].numpy() + 360))
    preferred = dict(zip(family.units, family.preferred.tolist()))
    colours = plt.get_cmap("twilight")
    for unit in units:
        response = curves.responses[unit].clamp_min(0)
        response = (response / response.max().clamp_min(1e-12)).numpy()
        ax.plot(angles, np.append(response, response[0]), color=colours(preferred.get(unit, 0) / 360), lw=2.2)
    ax.set_yticks([])
    ax.set_title(f"{family.layer}: {len(units)} curve detectors", fontsize=16, pad=14)


# --- the figures ---

def make_from_noise(ctx):
    name, model = ctx.first_model()
    layer, unit = featured_unit(ctx, model)
    snapshots = ctx.params["snapshots"]
    image = data_colour_image(ctx, model, 1)
    with torch.no_grad():     # visible noise at step 0: the talk's "optimising random noise"
        image.spatial.spectrum.normal_(0, 0.5, generator=torch.Generator().manual_seed(ctx.seed))
    result = visualise(ctx, model, layer, [unit], max(snapshots), image=image, snapshots=snapshots)
    values = [float(neuron_values(model, layer, [unit], result.snapshots[s])[0]) for s in snapshots]
    maximum, spread = dataset_strongest(model, layer, ctx.counted_dataset("test", "images", name).images)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(10, 2.9), layout="constrained")
    for ax, step, value in zip(axes, snapshots, values):
        show_image(ax, result.snapshots[step][0], f"step {step}\nactivation {value:.1f}")
    fig.suptitle(f"Gradient ascent from noise: {layer} unit {unit}", fontsize=17, fontweight="bold")
    ctx.save(fig)
    return {"model": name, "layer": layer, "unit": unit, "steps": snapshots,
            "activation_by_step": dict(zip(map(str, snapshots), values)),
            "activation_start": values[0], "activation_final": values[-1],
            "dataset_max": float(maximum[unit]),
            "sigmas_beyond_dataset_max": float(sigmas_beyond(torch.tensor(values[-1:]), [unit], maximum, spread)[0])}


def make_regularisation(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import RenderSettings, render
    name, model = ctx.first_model()
    layer, unit = featured_unit(ctx, model)
    steps, lr = ctx.params["steps"], ctx.params["learning_rate"]
    penalised = obj.neuron(layer, unit) - ctx.params["l2"] * obj.l2() - ctx.params["tv"] * obj.total_variation()
    pixels_with_jitter = RenderSettings(fourier=False, decorrelate=False, transforms="jitter", learning_rate=lr)
    runs = {
        "none": render(model, obj.neuron(layer, unit), steps=steps, progress=False,
                       settings=RenderSettings.naive(learning_rate=lr)),
        "l2_tv_jitter": render(model, penalised, steps=steps, progress=False, settings=pixels_with_jitter),
        "fourier_decorrelated_transforms": visualise(ctx, model, layer, [unit], steps),
    }
    labels = {"none": "no prior\n(pixels)", "l2_tv_jitter": "L2 + TV + jitter\n(pixels)",
              "fourier_decorrelated_transforms": ("Fourier + decorrelated\ncolour + transforms"
                                                  if model.input_shape[0] == 3 else "Fourier\n+ transforms")}
    maximum, spread = dataset_strongest(model, layer, ctx.counted_dataset("test", "images", name).images)
    numbers = {}
    fig, axes = plt.subplots(1, 3, figsize=(10, 4.4))
    for ax, (kind, run) in zip(axes, runs.items()):
        reached = neuron_values(model, layer, [unit], run.images)
        high = float(high_frequency_fraction(run.images)[0])
        numbers[kind] = {"activation": float(reached[0]), "high_frequency_fraction": high,
                         "sigmas_beyond_dataset_max": float(sigmas_beyond(reached, [unit], maximum, spread)[0])}
        show_image(ax, run.images[0], f"{labels[kind]}\nact. {activation_label(reached[0])}, high freq. {100 * high:.0f}%")
    ctx.save(fig)
    return {"model": name, "layer": layer, "unit": unit, "steps": steps, "dataset_max": float(maximum[unit]),
            **numbers}


def make_layer_grid(ctx):
    name, model = ctx.first_model()
    dataset = ctx.counted_dataset("test", "images", name).images
    numbers, pictures = {}, {}
    for layer in grid_layers(ctx, model, ctx.params["layers"]):
        maximum, spread = dataset_strongest(model, layer, dataset)
        channels = range(min(len(maximum), ctx.params["units"]))
        result = visualise(ctx, model, layer, channels, ctx.params["steps"])
        pictures[layer] = centre_crop(result.images, crop_size(model, layer))
        sigmas = sigmas_beyond(neuron_values(model, layer, channels, result.images), channels, maximum, spread)
        numbers[layer] = {"channels": len(maximum), "units_shown": len(channels),
                          "median_sigmas_beyond_dataset_max": float(sigmas.median()),
                          "fraction_beyond_dataset_max": float((sigmas > 0).float().mean())}
    fig = plt.figure(figsize=(10, 3.9))
    grid = GridSpec(1, len(pictures), figure=fig, wspace=0.08)
    for column, (layer, images) in enumerate(pictures.items()):
        shown = numbers[layer]
        of = f" of {shown['channels']}" if shown["units_shown"] < shown["channels"] else ""
        draw_square_grid(fig, grid[column], images, f"{layer}\n{len(images)}{of} units")
    ctx.save(fig)
    return {"model": name, "steps": ctx.params["steps"], "units_total": sum(len(p) for p in pictures.values()),
            "layers": numbers}


def make_dataset_examples(ctx):
    from mechinterp.featvis.dataset_examples import (deepest_layer_seen_whole, receptive_field,
                                                     receptive_field_crops, top_activating_examples)
    name, model = ctx.first_model()
    images = ctx.counted_dataset("test", "images", name).images
    layer = (ctx.layer(model) if "layer" in ctx.params       # else the deepest conv a crop can show whole
             else deepest_layer_seen_whole(model, ctx.conv_layers(model), tuple(images.shape[1:])))
    top = top_activating_examples(model, layer, images, k=ctx.params["examples"], progress=False)
    units = top.values[:, 0].argsort(descending=True)[:ctx.params["units"]].tolist()
    result = visualise(ctx, model, layer, units, ctx.params["steps"])
    reached = neuron_values(model, layer, units, result.images)
    field = receptive_field(model, layer, tuple(images.shape[1:]))
    pictures = centre_crop(result.images, field.size[0])
    fig, axes = plt.subplots(len(units), 1 + ctx.params["examples"], figsize=(10, 1.75 * len(units) + 0.6),
                             layout="constrained")
    numbers = {}
    for row, unit in enumerate(units):
        show_image(axes[row, 0], pictures[row], activation_label(reached[row]))
        axes[row, 0].set_ylabel(f"unit {unit}", fontsize=14)
        for column, crop in enumerate(receptive_field_crops(images, top, field, unit), start=1):
            show_image(axes[row, column], crop, activation_label(top.values[unit, column - 1]))
        numbers[str(unit)] = {"visualisation": float(reached[row]), "dataset_max": float(top.values[unit, 0]),
                              "ratio": float(reached[row] / top.values[unit, 0])}
    fig.suptitle(f"{layer}: optimised image (left), the test crops that excite it most (right);\n"
                 "above each, the unit's activation", fontsize=15)
    ctx.save(fig)
    ratios = [n["ratio"] for n in numbers.values()]
    return {"model": name, "layer": layer, "units": numbers, "receptive_field": list(field.size),
            "median_ratio": float(np.median(ratios)), "min_ratio": float(min(ratios))}


def make_diversity(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.hooks import run_with_cache
    name, model = ctx.first_model()
    layer, unit = featured_unit(ctx, model)
    batch, style_layer = ctx.params["batch"], model.feature_layers[0]
    runs = {"plain": visualise(ctx, model, layer, [unit] * batch, ctx.params["steps"]),
            "diverse": visualise(ctx, model, layer, [unit] * batch, ctx.params["steps"],
                                 extra=ctx.params["weight"] * obj.diversity(style_layer))}
    numbers = {}
    for kind, run in runs.items():
        activations = run_with_cache(model, run.images.to(ctx.device), [style_layer])[1]
        # diversity scores -(1/B) sum_{j != i} cos(G_i, G_j); this is the mean pairwise cosine
        similarity = -obj.diversity(style_layer)(activations).mean() * batch / (batch - 1)
        numbers[kind] = {"mean_gram_similarity": float(similarity),
                         "mean_activation": float(neuron_values(model, layer, [unit] * batch, run.images).mean())}
    fig, axes = plt.subplots(2, batch, figsize=(10, 5.4))
    for row, (label, run) in enumerate(zip(("independent seeds", "with a diversity term"), runs.values())):
        for column in range(batch):
            show_image(axes[row, column], run.images[column])
        axes[row, 0].set_ylabel(label, fontsize=14)
    ctx.save(fig)
    return {"model": name, "layer": layer, "unit": unit, "style_layer": style_layer, **numbers}


def make_deepdream(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.deepdream import deepdream, photograph
    name, model = ctx.first_model()
    layer = model.feature_layers[-1]
    photo = photograph(ctx.params["photo"], ctx.params["size"], channels=model.input_shape[0])
    dream = deepdream(model, photo, obj.deepdream(layer), octaves=ctx.params["octaves"],
                      steps_per_octave=ctx.params["steps"], step_size=ctx.params["step_size"],
                      seed=ctx.seed, progress=False)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    show_image(axes[0], photo, f"scikit-image '{ctx.params['photo']}'")
    show_image(axes[1], dream.image, f"dreamed with {layer}")
    ctx.save(fig)
    return {"model": name, "layer": layer, "photo": ctx.params["photo"], "size": ctx.params["size"],
            "octaves": ctx.params["octaves"], "objective_before": dream.objective_before,
            "objective_after": dream.objective_after,
            "amplification": dream.objective_after / max(dream.objective_before, 1e-12)}


def make_tuning(ctx):
    name, model = ctx.first_model()
    _, family = curve_family(ctx, model, ctx.params["angles"])
    curve = [(u, p) for u, k, p in zip(family.units, family.kinds, family.preferred.tolist()) if k == "curve"]
    units = [u for u, _ in curve] or family.units
    layer = feeding_conv(ctx, model, family.layer)
    pictures = centre_crop(visualise(ctx, model, layer, units, ctx.params["steps"]).images, crop_size(model, layer))
    fig = plt.figure(figsize=(10, 5.4))
    grid = GridSpec(1, 2, figure=fig, width_ratios=[1.1, 1], wspace=0.15)
    draw_radial_tuning(fig.add_subplot(grid[0], projection="polar"), family.curves["curve"], units, family)
    draw_square_grid(fig, grid[1], pictures, "their optimised images")
    ctx.save(fig)
    return {"model": name, "layer": family.layer, "angles": ctx.params["angles"], "curve_units": units,
            "curve_detectors": len(curve), "edge_detectors": family.kinds.count("edge"),
            "units_in_layer": len(family.curves["curve"].responses),
            "curve_coverage": family.coverage["curve"], "edge_coverage": family.coverage["edge"],
            "preferred_degrees": {str(u): p for u, p in curve},
            "median_selectivity": float(family.selectivity.median()) if family.units else 0.0}
