"""Feature-visualisation figures: what makes a unit of shapes-cnn-a fire, found by optimisation.

featvis/from-noise          one unit's image at several optimisation steps, starting from noise
featvis/regularisation      the same unit: no prior / L2 + TV + jitter / Fourier + decorrelation +
                            transforms, with activation reached and high-frequency energy
featvis/layer-grid          every channel of every conv layer, each layer in one batched render
featvis/dataset-examples    units' visualisations beside the dataset crops that excite them most
featvis/diversity           four images of one unit with and without a diversity objective
featvis/deepdream           a scikit-image photograph before and after dreaming with a layer
featvis/tuning              radial tuning curves of the curve-detector family the finder labels

The "featured" unit is the strongest curve detector of the layer with the largest curve family
(the finder in mechinterp.featvis.tuning), so several figures follow the same unit. Conv layers are
visualised before their ReLU, so no unit starts switched off. Colours are decorrelated with the
square root of the shapes data's own colour covariance.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Rectangle

FIGURES = {
    "featvis/from-noise": {
        "make": "make_from_noise",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"snapshots": [0, 4, 12, 24], "learning_rate": 0.1, "colour_images": 300},
                   "full": {"snapshots": [0, 8, 32, 128, 512], "learning_rate": 0.05, "colour_images": 2000}},
        "outputs": ["png"],
    },
    "featvis/regularisation": {
        "make": "make_regularisation",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"steps": 24, "learning_rate": 0.1, "colour_images": 300, "l2": 0.5, "tv": 1.0},
                   "full": {"steps": 512, "learning_rate": 0.05, "colour_images": 2000, "l2": 0.5, "tv": 1.0}},
        "outputs": ["png"],
    },
    "featvis/layer-grid": {
        "make": "make_layer_grid",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"steps": 12, "learning_rate": 0.1, "colour_images": 300, "dataset_images": 300},
                   "full": {"steps": 512, "learning_rate": 0.05, "colour_images": 2000, "dataset_images": 2000}},
        "outputs": ["png"],
    },
    "featvis/dataset-examples": {
        "make": "make_dataset_examples",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"steps": 16, "learning_rate": 0.1, "dataset_images": 300, "colour_images": 300,
                             "units": 3, "examples": 5},
                   "full": {"steps": 512, "learning_rate": 0.05, "dataset_images": 2000, "colour_images": 2000,
                            "units": 4, "examples": 6}},
        "outputs": ["png"],
    },
    "featvis/diversity": {
        "make": "make_diversity",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"steps": 16, "learning_rate": 0.1, "colour_images": 300, "images": 4, "weight": 2.0},
                   "full": {"steps": 512, "learning_rate": 0.05, "colour_images": 2000, "images": 4, "weight": 2.0}},
        "outputs": ["png"],
    },
    "featvis/deepdream": {
        "make": "make_deepdream",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"photo": "astronaut", "size": 64, "octaves": 2, "steps": 3, "step_size": 0.02},
                   "full": {"photo": "astronaut", "size": 256, "octaves": 4, "steps": 20, "step_size": 0.01}},
        "outputs": ["png"],
    },
    "featvis/tuning": {
        "make": "make_tuning",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"angles": 24, "steps": 12, "learning_rate": 0.1, "colour_images": 300},
                   "full": {"angles": 72, "steps": 512, "learning_rate": 0.05, "colour_images": 2000}},
        "outputs": ["png"],
    },
}

MODEL = "shapes-cnn-a"


# --- shared pieces ---

def shapes_images(count):
    from mechinterp.data import load_dataset
    return load_dataset("shapes", "test", count=count).images


def data_colour_parameterisation(ctx, batch, seeds=None):
    """Fourier image with colour decorrelated by the shapes data's own colour covariance."""
    from mechinterp.featvis.parameterisations import ImageParameterisation, estimate_colour_correlation_sqrt
    root = estimate_colour_correlation_sqrt(shapes_images(ctx.params["colour_images"]))
    seeds = list(range(batch)) if seeds is None else seeds
    return ImageParameterisation((batch, 3, 32, 32), fourier=True, decorrelate=True, seeds=seeds,
                                 colour_correlation_sqrt=root)


def curve_family(model, count=36):
    """(layer index, family): the layer after the first with the most curve detectors."""
    from mechinterp.featvis.tuning import find_detector_family
    families = [(index, find_detector_family(model, model.feature_layers[index], count=count))
                for index in range(1, len(model.feature_layers))]
    return max(families, key=lambda pair: (pair[1].kinds.count("curve"), -pair[0]))


def featured_unit(model):
    """(conv layer, unit): the strongest curve detector of the richest curve family (else the
    strongest responder there); visualised before its ReLU."""
    index, family = curve_family(model)
    peaks = family.curves["curve"].responses.max(1).values
    curve_units = [u for u, kind in zip(family.units, family.kinds) if kind == "curve"]
    unit = max(curve_units, key=lambda u: float(peaks[u])) if curve_units else int(peaks.argmax())
    return model.conv_layers[index], unit


def high_frequency_fraction(images):
    """Share of each image's (mean-removed) spectral power above half the Nyquist frequency."""
    images = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(images).abs().pow(2).sum(1)
    fy = torch.fft.fftfreq(images.shape[-2])[:, None]
    fx = torch.fft.fftfreq(images.shape[-1])[None, :]
    high = (fy ** 2 + fx ** 2).sqrt() > 0.25
    return (power * high).flatten(1).sum(1) / power.flatten(1).sum(1).clamp_min(1e-12)


def dataset_channel_means(model, layer, images):
    """(units,) max and std over the dataset of each channel's spatial mean (what channel() scores)."""
    from mechinterp.featvis.dataset_examples import top_activating_examples
    from mechinterp.hooks import run_with_cache
    top = top_activating_examples(model, layer, images, k=1, statistic="mean", progress=False)
    stds = []
    for start in range(0, len(images), 500):
        batch = images[start:start + 500].to(next(model.parameters()).device)
        stds.append(run_with_cache(model, batch, [layer])[1][layer].mean(dim=(2, 3)).cpu())
    return top.values[:, 0], torch.cat(stds).std(0)


def show(ax, image, title=None):
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy() if image.shape[0] == 3 else image[0].numpy(),
              cmap=None if image.shape[0] == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=14, fontweight="normal")


def render_units(ctx, model, layer, units, steps, extra=None, neuron=False):
    """Image i maximises unit units[i] of `layer` (its channel mean, or its centre neuron with a
    light L2 pull towards grey so the area outside the receptive field stays calm)."""
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import RenderSettings, render
    goal = obj.neuron(layer, list(units)) - 0.5 * obj.l2() if neuron else obj.channel(layer, list(units))
    goal = goal + (extra if extra is not None else 0)
    image = data_colour_parameterisation(ctx, len(units))
    return render(model, goal, steps=steps, image=image, progress=False,
                  settings=RenderSettings(learning_rate=ctx.params["learning_rate"]))


def centre_crop(images, size):
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top:top + size, left:left + size]


# --- the figures ---

def make_from_noise(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import RenderSettings, render
    model = ctx.model(MODEL)
    layer, unit = featured_unit(model)
    snapshots = ctx.params["snapshots"]
    # visible noise at step 0: the talk's "optimising random noise"
    image = data_colour_parameterisation(ctx, 1)
    with torch.no_grad():
        image.spatial.spectrum.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    result = render(model, obj.channel(layer, unit), steps=max(snapshots), image=image.to(ctx.device),
                    snapshot_steps=snapshots, progress=False,
                    settings=RenderSettings(learning_rate=ctx.params["learning_rate"]))
    values = [float(evaluate_channel(model, layer, unit, result.snapshots[s])) for s in snapshots]
    fig, axes = plt.subplots(1, len(snapshots), figsize=(10, 2.9))
    for ax, step, value in zip(axes, snapshots, values):
        show(ax, result.snapshots[step][0], f"step {step}\nactivation {value:.1f}")
    fig.suptitle(f"Gradient ascent from noise: {layer} unit {unit}", fontsize=17, fontweight="bold")
    ctx.save(fig)
    return {"model": MODEL, "layer": layer, "unit": unit, "steps": snapshots,
            "activation_by_step": dict(zip(map(str, snapshots), values)),
            "activation_final": values[-1], "activation_start": values[0]}


def evaluate_channel(model, layer, unit, images):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import evaluate
    device = next(model.parameters()).device
    return evaluate(model, obj.channel(layer, unit), images.to(device))[0].cpu()


def make_regularisation(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import RenderSettings, render
    model = ctx.model(MODEL)
    layer, unit = featured_unit(model)
    steps, lr = ctx.params["steps"], ctx.params["learning_rate"]
    penalised = obj.channel(layer, unit) - ctx.params["l2"] * obj.l2() - ctx.params["tv"] * obj.total_variation()
    runs = {
        "none": render(model, obj.channel(layer, unit), steps=steps, progress=False,
                       settings=RenderSettings.naive(learning_rate=lr)),
        "l2_tv_jitter": render(model, penalised, steps=steps, progress=False,
                               settings=RenderSettings(fourier=False, decorrelate=False, transforms="jitter",
                                                       learning_rate=lr)),
        "fourier_decorrelated_transforms": render_units(ctx, model, layer, [unit], steps),
    }
    maximum, spread = dataset_channel_means(model, layer, shapes_images(ctx.params["colour_images"]))
    labels = {"none": "no prior\n(pixels)", "l2_tv_jitter": "L2 + TV + jitter\n(pixels)",
              "fourier_decorrelated_transforms": "Fourier + decorrelated\ncolour + transforms"}
    numbers = {}
    fig, axes = plt.subplots(1, 3, figsize=(10, 4.3))
    for ax, (name, run) in zip(axes, runs.items()):
        reached = float(evaluate_channel(model, layer, unit, run.images))
        high = float(high_frequency_fraction(run.images)[0])
        numbers[name] = {"activation": reached, "high_frequency_fraction": high,
                         "sigmas_beyond_dataset_max": (reached - float(maximum[unit])) / float(spread[unit])}
        show(ax, run.images[0], f"{labels[name]}\nact. {reached:.1f}, high freq. {100 * high:.0f}%")
    ctx.save(fig)
    return {"model": MODEL, "layer": layer, "unit": unit, "steps": steps, "dataset_max": float(maximum[unit]),
            "dataset_std": float(spread[unit]), **numbers}


def make_layer_grid(ctx):
    model = ctx.model(MODEL)
    dataset = shapes_images(ctx.params["dataset_images"])
    numbers, renders = {}, {}
    for layer in model.conv_layers:
        channels = dict(model.named_modules())[layer].out_channels
        renders[layer] = render_units(ctx, model, layer, range(channels), ctx.params["steps"])
        maximum, spread = dataset_channel_means(model, layer, dataset)
        sigmas = (renders[layer].objective_values - maximum) / spread.clamp_min(1e-6)
        numbers[layer] = {"channels": channels,
                          "median_sigmas_beyond_dataset_max": float(sigmas.median()),
                          "fraction_beyond_dataset_max": float((sigmas > 0).float().mean())}
    fig = plt.figure(figsize=(10, 3.9))
    grid = GridSpec(1, len(renders), figure=fig, wspace=0.08)
    for column, (layer, result) in enumerate(renders.items()):
        draw_square_grid(fig, grid[column], result.images, f"{layer}: {len(result.images)} channels")
    ctx.save(fig)
    total = sum(n["channels"] for n in numbers.values())
    return {"model": MODEL, "steps": ctx.params["steps"], "channels_total": total, "layers": numbers}


def draw_square_grid(fig, cell, images, title):
    side = int(np.ceil(np.sqrt(len(images))))
    inner = cell.subgridspec(side, side, wspace=0.04, hspace=0.04)
    for index in range(side * side):
        ax = fig.add_subplot(inner[index // side, index % side])
        if index < len(images):
            show(ax, images[index])
        else:
            ax.axis("off")
        if index == side // 2:
            ax.set_title(title, fontsize=15, fontweight="bold")


def make_dataset_examples(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.dataset_examples import (receptive_field, receptive_field_crops,
                                                     top_activating_examples)
    from mechinterp.featvis.render import evaluate
    model = ctx.model(MODEL)
    layer = model.conv_layers[2]
    images = shapes_images(ctx.params["dataset_images"])
    top = top_activating_examples(model, layer, images, k=ctx.params["examples"], progress=False)
    units = top.values[:, 0].argsort(descending=True)[:ctx.params["units"]].tolist()
    result = render_units(ctx, model, layer, units, ctx.params["steps"], neuron=True)
    reached_values = evaluate(model, obj.neuron(layer, units), result.images.to(ctx.device)).cpu()
    field = receptive_field(model, layer, tuple(images.shape[1:]))
    pictures = centre_crop(result.images, field.size[0])
    fig, axes = plt.subplots(len(units), 1 + ctx.params["examples"], figsize=(10, 1.75 * len(units) + 0.6))
    numbers = {}
    for row, unit in enumerate(units):
        reached = float(reached_values[row])
        show(axes[row, 0], pictures[row], f"optimised: {reached:.1f}" if row == 0 else f"{reached:.1f}")
        crops = receptive_field_crops(images, top, field, unit)
        for column, crop in enumerate(crops, start=1):
            value = float(top.values[unit, column - 1])
            show(axes[row, column], crop, f"dataset: {value:.1f}" if row == column == 1 else f"{value:.1f}")
        axes[row, 0].set_ylabel(f"unit {unit}", fontsize=14)
        numbers[str(unit)] = {"visualisation": reached, "dataset_max": float(top.values[unit, 0]),
                              "ratio": reached / float(top.values[unit, 0])}
    ctx.save(fig)
    ratios = [n["ratio"] for n in numbers.values()]
    return {"model": MODEL, "layer": layer, "units": numbers, "receptive_field": list(field.size),
            "median_ratio": float(np.median(ratios)), "min_ratio": float(min(ratios))}


def make_diversity(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.hooks import run_with_cache
    model = ctx.model(MODEL)
    layer, unit = featured_unit(model)
    count = ctx.params["images"]
    plain = render_units(ctx, model, layer, [unit] * count, ctx.params["steps"])
    diverse = render_units(ctx, model, layer, [unit] * count, ctx.params["steps"],
                           extra=ctx.params["weight"] * obj.diversity(model.feature_layers[0]))
    numbers = {}
    for name, run in (("plain", plain), ("diverse", diverse)):
        activations = run_with_cache(model, run.images.to(ctx.device), [model.feature_layers[0]])[1]
        similarity = -obj.diversity(model.feature_layers[0])(activations).mean() * count / (count - 1)
        numbers[name] = {"mean_gram_similarity": float(similarity),
                         "mean_activation": float(evaluate_channel_batch(model, layer, unit, run.images).mean())}
    fig, axes = plt.subplots(2, count, figsize=(10, 5.4))
    for row, (name, run) in enumerate((("independent seeds", plain), ("with a diversity term", diverse))):
        for column in range(count):
            show(axes[row, column], run.images[column])
        axes[row, 0].set_ylabel(name, fontsize=14)
    ctx.save(fig)
    return {"model": MODEL, "layer": layer, "unit": unit, **numbers}


def evaluate_channel_batch(model, layer, unit, images):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import evaluate
    return evaluate(model, obj.channel(layer, unit), images.to(next(model.parameters()).device)).cpu()


def make_deepdream(ctx):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.deepdream import deepdream, photograph
    model = ctx.model(MODEL)
    layer = model.feature_layers[1]
    photo = photograph(ctx.params["photo"], ctx.params["size"])
    dream = deepdream(model, photo, obj.deepdream(layer), octaves=ctx.params["octaves"],
                      steps_per_octave=ctx.params["steps"], step_size=ctx.params["step_size"],
                      seed=ctx.seed, progress=False)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    show(axes[0], photo, f"scikit-image '{ctx.params['photo']}'")
    show(axes[1], dream.image, f"dreamed with {layer}")
    ctx.save(fig)
    return {"model": MODEL, "layer": layer, "photo": ctx.params["photo"], "size": ctx.params["size"],
            "octaves": ctx.params["octaves"], "objective_before": dream.objective_before,
            "objective_after": dream.objective_after,
            "amplification": dream.objective_after / max(dream.objective_before, 1e-12)}


def make_tuning(ctx):
    from mechinterp.featvis.dataset_examples import receptive_field
    model = ctx.model(MODEL)
    index, family = curve_family(model, ctx.params["angles"])
    curve = [(u, p) for u, k, p in zip(family.units, family.kinds, family.preferred.tolist()) if k == "curve"]
    units = [u for u, _ in curve] or family.units
    field = receptive_field(model, family.layer, model.input_shape)
    pictures = centre_crop(render_units(ctx, model, model.conv_layers[index], units, ctx.params["steps"],
                                        neuron=True).images, field.size[0])
    fig = plt.figure(figsize=(10, 5.4))
    grid = GridSpec(1, 2, figure=fig, width_ratios=[1.1, 1], wspace=0.15)
    draw_radial_tuning(fig.add_subplot(grid[0], projection="polar"), family.curves["curve"], units, family)
    draw_square_grid(fig, grid[1], pictures, "their optimised images")
    ctx.save(fig)
    edges = sum(kind == "edge" for kind in family.kinds)
    return {"model": MODEL, "layer": family.layer, "angles": ctx.params["angles"], "curve_units": units,
            "curve_detectors": len(curve), "edge_detectors": edges,
            "units_in_layer": len(family.curves["curve"].responses),
            "curve_coverage": family.coverage["curve"], "edge_coverage": family.coverage["edge"],
            "preferred_degrees": {str(u): p for u, p in curve},
            "median_selectivity": float(family.selectivity.median()) if family.units else 0.0}


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
