"""Circuits figures: a circuit read off the weights, tested by ablation and patching, and credited
by integrated gradients (the key-value figures of the digits MLP are in circuits_key_value.py).

circuits/curve-circuit     a second-layer unit most selective for arcs (or corners), its
                           strongest first-layer inputs and the kernels joining them
circuits/ablation          zero / mean / resample ablation of each second-layer unit, effect sizes
circuits/patching          recovered logit difference, per unit and per layer (donor -> target)
circuits/integrated-gradients   IG maps for a few inputs (bars over the features for a model of
                           vectors), with each completeness gap, and the layer IG of the layer
                           params "layer" names (a conv map or a vector layer)
circuits/ig-convergence    completeness gap against number of steps, for each quadrature rule

Each figure reads the first model its FIGURES entry declares and that model's own data (its zoo
entry's dataset, ctx.dataset). The curve circuit, patching and IG figures are about the shapes
data's classes (arcs, circles, ...): their class params (the curve circuit's "detects": each class
a detector is sought for and what the title calls it) name shapes classes, and pointed at a model
of other data they say which params to set to that data's classes. Image counts are params too.
Layers come from the model's description (feature_layers, conv_layers); the curve circuit reads
conv kernels, and a model without conv layers (an MLP) is told so, naming its layers (ctx.conv_layers).
Dataset-example crops are featvis's (mechinterp.featvis.dataset_examples), cut at each unit's
receptive field, so they agree with the featvis slides.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.gridspec import GridSpec

from figures_src.featvis import feeding_conv
from figures_src.plotting import (EXCITE, INHIBIT, SIGNED, input_name, legend_outside, no_ticks, show_image,
                                  show_signed)

MODEL = "shapes-cnn-a"

FIGURES = {
    "circuits/curve-circuit": {
        "make": "make_curve_circuit",
        "models": [MODEL],
        "params": {"quick": {"images": 400, "inputs": 4, "inhibitors": 2, "featvis_steps": 32,
                             "detects": {"arc": "curve", "corner": "corner"}},
                   "full": {"images": 2000, "inputs": 4, "inhibitors": 2, "featvis_steps": 512,
                            "detects": {"arc": "curve", "corner": "corner"}}},
        "outputs": ["png"],
    },
    "circuits/ablation": {
        "make": "make_ablation",
        "models": [MODEL],
        "params": {"quick": {"images": 160, "reference": 160, "shown": 8},
                   "full": {"images": 1000, "reference": 1000, "shown": 10}},
        "outputs": ["png"],
    },
    "circuits/patching": {
        "make": "make_patching",
        "models": [MODEL],
        "params": {"quick": {"images": 400, "pairs": 8, "target_class": "arc", "donor_class": "circle"},
                   "full": {"images": 2000, "pairs": 48, "target_class": "arc", "donor_class": "circle"}},
        "outputs": ["png"],
    },
    "circuits/integrated-gradients": {
        "make": "make_integrated_gradients",
        "models": [MODEL],
        "params": {"quick": {"images": 200, "steps": 32, "classes": ["line", "arc", "corner", "cross"],
                             "layer": 1},
                   "full": {"images": 2000, "steps": 128, "classes": ["line", "arc", "corner", "cross"],
                            "layer": 1}},
        "outputs": ["png"],
    },
    "circuits/ig-convergence": {
        "make": "make_ig_convergence",
        "models": [MODEL],
        "params": {"quick": {"images": 200, "inputs": 4, "steps": [2, 4, 8, 16, 32]},
                   "full": {"images": 2000, "inputs": 8, "steps": [2, 4, 8, 16, 32, 64, 128, 256]}},
        "outputs": ["png"],
    },
}

def model_test(ctx, name, param="images"):
    """The model's first params[param] test images, their labels and its class names."""
    data = model_test_data(ctx, name, param)
    return data.images.to(ctx.device), data.labels.to(ctx.device), data.class_names


def model_test_data(ctx, name, param="images"):
    """model_test's LabelledImages (a table's feature_names too)."""
    return ctx.counted_dataset("test", param, name)


def model_train(ctx, name, param):
    return ctx.counted_dataset("train", param, name).images.to(ctx.device)


def unit_crops(model, layer, images, unit, count):
    """The featvis dataset examples of one unit: crops of its top `count` images at its
    receptive field around its strongest position, and those images' indices."""
    from mechinterp.featvis.dataset_examples import (receptive_field, receptive_field_crops,
                                                     top_activating_examples)
    top = top_activating_examples(model, layer, images, k=count, progress=False)
    field = receptive_field(model, layer, model.input_shape)
    return receptive_field_crops(images, top, field, unit), top.indices[unit]


# --- circuits/curve-circuit --------------------------------------------------------------------

def make_curve_circuit(ctx):
    from mechinterp.circuits.ablation import peak_drop_when_zeroed
    from mechinterp.circuits.weights import unit_circuit
    from mechinterp.examples import most_selective_unit
    from mechinterp.featvis.dataset_examples import per_image_statistic
    from mechinterp.hooks import run_with_cache
    name, model = ctx.first_model()
    images, labels, class_names = model_test(ctx, name)
    source_layer, layer = model.feature_layers[0], model.feature_layers[1]
    conv_layer = feeding_conv(ctx, model, layer)
    detects = ctx.params["detects"]     # {class: what its detector is called}, sought in order
    for wanted in detects:
        ctx.class_index(class_names, "detects", wanted)
    peaks, _ = per_image_statistic(run_with_cache(model, images, [layer])[1][layer], "max")
    kind, unit, selectivity = most_selective_unit(peaks, labels, class_names, list(detects))
    circuit = unit_circuit(model, conv_layer, unit, ctx.params["inputs"], ctx.params["inhibitors"])
    inputs = circuit.excitatory + circuit.inhibitory
    target_crops, top_images = unit_crops(model, layer, images, unit, 16)
    drop = peak_drop_when_zeroed(model, images[top_images.to(images.device)], source_layer,
                                 [s.unit for s in circuit.excitatory], layer, unit)
    source_crops = {s.unit: unit_crops(model, source_layer, images, s.unit, 1)[0][0] for s in inputs}
    # a first-layer unit's picture is its filter; the target gets a feature visualisation
    target_picture = feature_picture(model, conv_layer, unit, ctx.params["featvis_steps"])
    pictures, picture_kind = input_pictures(ctx, model, source_layer, [s.unit for s in inputs],
                                            ctx.params["featvis_steps"])
    fig = draw_circuit(circuit, inputs, (pictures, picture_kind), source_crops, [target_picture, *target_crops[:2]],
                       detects.get(kind, kind), unit, layer)
    ctx.save(fig)
    return {"model": name, "layer": layer, "target_unit": unit, "detects": kind,
            "selectivity": selectivity, "circuit": circuit.to_dict(),
            "excitatory_units": [s.unit for s in circuit.excitatory],
            "inhibitory_units": [s.unit for s in circuit.inhibitory],
            "activation_drop_when_excitatory_inputs_zeroed": drop,
            "target_picture": "feature visualisation", "input_pictures": picture_kind,
            "crop_size": list(target_crops.shape[-2:]),
            "kernel_size": list(circuit.kernels[inputs[0].unit].shape)}


def feature_picture(model, layer, unit, steps):
    """The feature visualisation of one unit of `layer` (mechinterp.featvis)."""
    from mechinterp.featvis.objectives import channel
    from mechinterp.featvis.render import render
    return render(model, channel(layer, [unit]), steps=steps, progress=False).images[0]


def input_pictures(ctx, model, source_layer, units, steps):
    """({unit: (C, H, W) picture}, what they are) for the input units: their filters when the
    source layer is the first conv's output, else (a deeper first feature layer, as in a model
    whose feature_layers skip its first conv) their feature visualisations."""
    from mechinterp.universality.filters import filters_as_images, first_layer_filters
    conv = feeding_conv(ctx, model, source_layer)
    if conv == model.conv_layers[0]:
        filters = filters_as_images(first_layer_filters(model)).transpose(0, 3, 1, 2)
        return {unit: filters[unit] for unit in units}, "filter"
    return {unit: feature_picture(model, conv, unit, steps) for unit in units}, "feature visualisation"


def draw_circuit(circuit, inputs, input_pictures, source_crops, target_images, name, unit, layer):
    """Columns of input units (filter or feature visualisation, dataset example, kernel into the
    target) -> the target (its feature visualisation, then its top dataset examples)."""
    pictures, picture_kind = input_pictures
    fig = plt.figure(figsize=(10, 5.6))
    columns = len(inputs)
    grid = GridSpec(3, columns + 2, figure=fig, width_ratios=[1] * columns + [0.35, 1.6],
                    hspace=0.25, wspace=0.15)
    limit = max(float(k.abs().max()) for k in circuit.kernels.values())
    for column, strength in enumerate(inputs):
        colour = EXCITE if strength in circuit.excitatory else INHIBIT
        axis = fig.add_subplot(grid[0, column])
        show_image(axis, pictures[strength.unit])
        axis.set_title(f"unit {strength.unit}", fontsize=13, color=colour)
        show_image(fig.add_subplot(grid[1, column]), source_crops[strength.unit])
        kernel_axis = fig.add_subplot(grid[2, column])
        show_signed(kernel_axis, circuit.kernels[strength.unit].cpu(), limit)
        kernel_axis.set_xlabel("excites" if colour == EXCITE else "inhibits", fontsize=12, color=colour)
    fig.axes[0].set_ylabel("filter" if picture_kind == "filter" else "feature\nvis.", fontsize=12)
    fig.axes[1].set_ylabel("top\nexample", fontsize=12)
    fig.axes[2].set_ylabel(f"kernel\n→ {unit}", fontsize=12)
    target_grid = grid[:, columns + 1].subgridspec(3, 1, hspace=0.08)
    for row, picture in enumerate(target_images[:3]):
        axis = fig.add_subplot(target_grid[row])
        show_image(axis, picture)
        if row == 0:
            axis.set_title(f"{layer} unit {unit}", fontsize=13)
    source = "first-layer" if picture_kind == "filter" else "input"
    fig.suptitle(f"A {name} detector read off the weights: {source} units → {layer} unit {unit}",
                 fontsize=17, y=1.04)
    return fig


# --- circuits/ablation ---------------------------------------------------------------------

def make_ablation(ctx):
    from mechinterp.circuits.ablation import METHODS, ablate_each_unit, ablation_effect
    name, model = ctx.first_model()
    images, labels, class_names = model_test(ctx, name)
    reference = model_train(ctx, name, "reference")
    layer = model.feature_layers[1]
    effects = {method: ablate_each_unit(model, images, labels, layer, method, reference)
               for method in METHODS}
    ranking = sorted(range(len(effects["mean"])), key=lambda u: -effects["mean"][u].loss_change)
    shown = ranking[:ctx.params["shown"]]
    top_three = ablation_effect(model, images, labels, layer, shown[:3], "mean", reference)
    fig = draw_ablation(effects, shown, top_three, class_names, layer)
    ctx.save(fig)
    return {"model": name, "layer": layer, "images": len(images),
            "clean_accuracy": effects["zero"][0].clean_accuracy, "ranked_units": shown,
            "top_unit": shown[0], "top_unit_mean": effects["mean"][shown[0]].to_dict(),
            "top_unit_zero": effects["zero"][shown[0]].to_dict(),
            "top_unit_resample": effects["resample"][shown[0]].to_dict(),
            "top_three_mean": top_three.to_dict(),
            "per_unit": {m: [e.to_dict() for e in effects[m]] for m in METHODS}}


def draw_ablation(effects, shown, top_three, class_names, layer):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5.6), gridspec_kw={"width_ratios": [1.5, 1]},
                                      layout="constrained")
    width = 0.27
    positions = np.arange(len(shown))
    for offset, method in zip((-width, 0, width), ("zero", "mean", "resample")):
        changes = [effects[method][u].loss_change for u in shown]
        left.bar(positions + offset, changes, width, label=method)
    for position, unit in zip(positions, shown):
        top = max(effects[m][unit].loss_change for m in ("zero", "mean", "resample"))
        left.annotate(f"{effects['mean'][unit].loss_effect_size:.2f}", (position, top),
                      textcoords="offset points", xytext=(0, 4), ha="center", fontsize=10)
    left.set_xticks(positions, [str(u) for u in shown])
    left.set_xlabel(f"{layer} unit, ranked by mean ablation\n(above each: effect size d of mean ablation)",
                    fontsize=14)
    left.set_ylabel("loss increase (nats)")
    tallest = max(effects[m][u].loss_change for m in ("zero", "mean", "resample") for u in shown)
    left.set_ylim(top=max(left.get_ylim()[1], 1.15 * tallest))     # room for the d= labels inside
    legend_outside(left, title="ablation")
    left.set_title("One unit at a time")
    change = np.array(top_three.per_class_accuracy_change) * 100
    right.barh(class_names, change, color=["#D55E00" if c < 0 else "#0072B2" for c in change])
    right.invert_yaxis()
    right.axvline(0, color="black", linewidth=1)
    right.set_xlabel("accuracy change (points)")
    right.set_title(f"Units {', '.join(map(str, top_three.units))} together")
    fig.suptitle("Ablation: which units does the network need?", fontsize=18)
    return fig


# --- circuits/patching ---------------------------------------------------------------------

def make_patching(ctx):
    from mechinterp.circuits.patching import patching_heatmap
    from mechinterp.examples import correctly_classified
    name, model = ctx.first_model()
    images, labels, class_names = model_test(ctx, name)
    target_index = ctx.class_index(class_names, "target_class")
    donor_index = ctx.class_index(class_names, "donor_class")
    target = correctly_classified(model, images, labels, target_index, ctx.params["pairs"])
    donor = correctly_classified(model, images, labels, donor_index, ctx.params["pairs"])
    pairs = min(len(target), len(donor))
    target, donor = target[:pairs], donor[:pairs]
    layers = list(model.feature_layers)
    heat = patching_heatmap(model, target, donor, layers, target_index, donor_index)
    ctx.save(draw_patching(heat, ctx.params["target_class"], ctx.params["donor_class"]))
    return patching_numbers(name, heat, layers, ctx.params, pairs)


def patching_numbers(name, heat, layers, params, pairs):
    """Per layer: the whole-layer patch, the best single unit and the units' sum."""
    rows = {}
    for row, layer in enumerate(layers):
        result = heat.per_unit[layer]
        mean, spread = result.recovered.mean(0), result.recovered.std(0)
        best = int(mean.argmax())
        rows[layer] = {"whole_layer": float(heat.whole_layer[row]), "best_unit": result.units[best],
                       "best_unit_recovered": float(mean[best]),
                       "best_unit_effect_size": float(mean[best] / spread[best].clamp(min=1e-8)),
                       "sum_of_units": float(mean.sum()), "per_unit_mean": mean.tolist()}
    return {"model": name, "target_class": params["target_class"],
            "donor_class": params["donor_class"], "pairs": pairs, "layers": rows}


def draw_patching(heat, target_name, donor_name):
    fig, (grid_axis, whole_axis) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True,
                                                gridspec_kw={"width_ratios": [12, 1]})
    ranked = np.sort(np.nan_to_num(heat.values.numpy(), nan=-np.inf), axis=1)[:, ::-1]
    ranked = np.where(np.isinf(ranked), np.nan, ranked)
    limit = max(float(np.nanmax(np.abs(ranked))), 1e-3)   # single units: their own scale
    image = grid_axis.imshow(ranked, cmap=SIGNED, vmin=-limit, vmax=limit, aspect="auto",
                             interpolation="nearest")
    labels = []
    for layer in heat.layers:
        result = heat.per_unit[layer]
        mean, spread = result.recovered.mean(0).cpu(), result.recovered.std(0).cpu()
        best = int(mean.argmax())
        size = float(mean[best] / spread[best].clamp(min=1e-8))
        labels.append(f"{layer}\nbest: unit {result.units[best]}\n{float(mean[best]):.2f} (d={size:.1f})")
    grid_axis.set_yticks(range(len(heat.layers)), labels, fontsize=12)
    grid_axis.set_xlabel("units, ranked by recovered logit difference")
    grid_axis.set_title(f"Patching one unit: {donor_name} → {target_name}")
    whole = heat.whole_layer.numpy()[:, None]
    whole_axis.imshow(whole, cmap=SIGNED, vmin=-1, vmax=1, aspect="auto")
    for row, value in enumerate(whole[:, 0]):
        whole_axis.text(0, row, f"{value:.2f}", ha="center", va="center", fontsize=13,
                        color="white" if abs(value) > 0.6 else "black")
    whole_axis.set_xticks([0], ["whole\nlayer"])
    fig.colorbar(image, ax=[grid_axis, whole_axis], label="recovered fraction (one unit)",
                 fraction=0.04)
    return fig


# --- circuits/integrated-gradients and ig-convergence --------------------------------------

def make_integrated_gradients(ctx):
    from mechinterp.attribution.gradients import (integrated_gradients, layer_integrated_gradients,
                                                  saliency)
    from mechinterp.examples import one_per_class
    name, model = ctx.first_model()
    data = model_test_data(ctx, name)
    images, labels, class_names = data.images.to(ctx.device), data.labels.to(ctx.device), data.class_names
    for wanted in ctx.params["classes"]:
        ctx.class_index(class_names, "classes", wanted)
    picks = one_per_class(model, images, labels, class_names, ctx.params["classes"])
    inputs, targets = images[picks], labels[picks]
    steps = ctx.params["steps"]
    ig = integrated_gradients(model, inputs, targets, baseline=0.0, steps=steps, internal_batch_size=256)
    gradients = saliency(model, inputs, targets, absolute=True)
    layer = ctx.layer(model)
    layer_ig = layer_integrated_gradients(model, inputs, layer, targets, baseline=0.0, steps=steps,
                                          internal_batch_size=256)
    images_in = input_name(model) == "pixels"
    baseline = "black image" if images_in else "zero input"
    if images_in:
        ctx.save(draw_ig_maps(inputs, gradients, ig, ctx.params["classes"], steps, baseline))
    else:
        ctx.save(draw_ig_bars(inputs, gradients, ig, ctx.params["classes"], steps, baseline, data.feature_names))
    attributions = layer_ig.attributions     # (N, units) of a vector layer, (N, C, H, W) of a conv map
    unit_totals = attributions.reshape(*attributions.shape[:2], -1).sum(2)
    with torch.no_grad():
        correct = (model(inputs).argmax(1) == targets).tolist()
    return {"model": name, "steps": steps, "rule": "gausslegendre", "baseline": baseline,
            "classes": ctx.params["classes"], "test_indices": picks,
            "correctly_classified": correct,
            "completeness_gap": ig.completeness_gap.tolist(),
            "relative_gap": ig.relative_gap.tolist(),
            "max_relative_gap": float(ig.relative_gap.max()),
            "output_difference": ig.output_difference.tolist(),
            "layer": layer, "layer_relative_gap": layer_ig.relative_gap.tolist(),
            "layer_top_units": unit_totals.argsort(1, descending=True)[:, :3].tolist(),
            **({} if images_in else {"top_inputs": top_attributed(ig.attributions)}),
            **({"top_input_names": [[data.feature_names[i] for i in top] for top in top_attributed(ig.attributions)]}
               if data.feature_names and not images_in else {})}


def top_attributed(attributions, count=3):
    """Each input's `count` features of largest |IG|, largest first: what a bar slide points to."""
    return attributions.flatten(1).abs().argsort(1, descending=True)[:, :count].tolist()


def draw_ig_maps(inputs, gradients, ig, class_names, steps, baseline):
    fig, axes = plt.subplots(3, len(inputs), figsize=(9, 7))
    maps = ig.attributions.sum(1).detach().cpu().numpy()
    sensitivity = gradients.sum(1).detach().cpu().numpy()
    for column, name in enumerate(class_names):
        show_image(axes[0, column], inputs[column])
        axes[0, column].set_title(name)
        axes[1, column].imshow(sensitivity[column], cmap="viridis", interpolation="nearest")
        no_ticks(axes[1, column])
        show_signed(axes[2, column], maps[column])
        gap = float(ig.relative_gap[column]) * 100
        axes[2, column].set_xlabel(f"gap {gap:.2f}%", fontsize=14)
    for row, label in enumerate(["input", "|gradient|", "IG"]):
        axes[row, 0].set_ylabel(label)
    fig.suptitle(f"Integrated gradients from a {baseline} ({steps} Gauss–Legendre steps)", fontsize=17)
    return fig


def draw_ig_bars(inputs, gradients, ig, class_names, steps, baseline, feature_names=None):
    """draw_ig_maps for a model of vectors: one bar per input feature instead of one pixel; with
    the table's feature names, each IG panel names its largest bar."""
    fig, axes = plt.subplots(3, len(inputs), figsize=(9, 7), sharex=True, squeeze=False)
    rows = [inputs.flatten(1), gradients.flatten(1), ig.attributions.flatten(1)]
    features = np.arange(rows[0].shape[1])
    for row, values in enumerate(rows):
        values = values.detach().cpu().numpy()
        limit = float(np.abs(values).max()) or 1.0
        for column, name in enumerate(class_names):
            axis = axes[row, column]
            axis.bar(features, values[column], width=0.8,
                     color=np.where(values[column] >= 0, EXCITE, INHIBIT) if row != 1 else "#555555")
            axis.set_ylim(-limit * 1.05 if row != 1 else 0, limit * 1.05)
            axis.axhline(0, color="black", linewidth=0.8)
            axis.set_yticks([])
            axis.set_title(name if row == 0 else "", fontsize=16)
        axes[row, 0].set_ylabel(["input", "|gradient|", "IG"][row])
    for column in range(len(class_names)):
        axes[2, column].set_xlabel(f"feature\ngap {float(ig.relative_gap[column]) * 100:.2f}%", fontsize=14)
        if feature_names:
            name_largest_bar(axes[2, column], rows[2][column].detach().cpu().numpy(), feature_names)
    fig.suptitle(f"Integrated gradients from a {baseline} ({steps} Gauss–Legendre steps)", fontsize=17)
    return fig


def name_largest_bar(axis, values, feature_names):
    """Write the feature name of the bar of largest |value| beside it, inside the panel."""
    top = int(np.abs(values).argmax())
    inward = "left" if top < len(values) / 2 else "right"
    axis.annotate(f" {feature_names[top]} ", (top, values[top]), ha=inward, fontsize=12,
                  va="bottom" if values[top] >= 0 else "top")


def make_ig_convergence(ctx):
    from mechinterp.attribution.gradients import RULES, integrated_gradients
    name, model = ctx.first_model()
    images, labels, _ = model_test(ctx, name)
    inputs, targets = images[:ctx.params["inputs"]], labels[:ctx.params["inputs"]]
    gaps = {}
    for rule in RULES:
        gaps[rule] = []
        for steps in ctx.params["steps"]:
            result = integrated_gradients(model, inputs, targets, baseline=0.0, steps=steps,
                                          rule=rule, internal_batch_size=512)
            # pooled over inputs: one input with F(x) close to F(x') cannot dominate the mean
            gaps[rule].append(float(result.completeness_gap.abs().sum() / result.output_difference.abs().sum()))
    fig, axis = plt.subplots(figsize=(10, 5.6))
    for rule in RULES:
        axis.plot(ctx.params["steps"], np.array(gaps[rule]) * 100, marker="o", label=rule.replace("_", " "))
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xticks(ctx.params["steps"], [str(s) for s in ctx.params["steps"]])
    axis.minorticks_off()
    axis.set_xlabel("steps along the path")
    axis.set_title("More steps, smaller gap: the attributions add up")
    axis.set_ylabel("completeness gap\n(% of |F(x) − F(x′)|, pooled)")
    axis.legend()
    ctx.save(fig)
    return {"model": name, "inputs": len(inputs), "steps": ctx.params["steps"],
            "pooled_relative_gap": gaps,
            "final_gap_percent": {rule: gaps[rule][-1] * 100 for rule in RULES},
            "worst_final_gap_percent": max(gaps[rule][-1] * 100 for rule in RULES)}


