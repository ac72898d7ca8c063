"""Circuits figures: a circuit read off the weights, tested by ablation and patching, credited by
integrated gradients, and the workshop's key-value reading of the digits MLP.

circuits/curve-circuit     a layer-2 unit of shapes-cnn-a most selective for arcs (or corners),
                           its strongest layer-1 inputs and the kernels joining them
circuits/ablation          zero / mean / resample ablation of each layer-2 unit, effect sizes
circuits/patching          recovered logit difference, per unit and per layer (donor -> target)
circuits/integrated-gradients   IG maps for a few inputs, with each completeness gap
circuits/ig-convergence    completeness gap against number of steps, for each quadrature rule
circuits/kv-keys           the digits MLP's 32 keys as 8x8 images, with the class each votes for
circuits/kv-correct        the key-value pairs behind a correct prediction
circuits/kv-wrong          the pairs that pushed a misclassified digit to the wrong class
circuits/kv-calculation    the whole calculation for one digit, step by step
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.gridspec import GridSpec

FIGURES = {
    "circuits/curve-circuit": {
        "make": "make_curve_circuit",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 400, "inputs": 4, "inhibitors": 2, "featvis_steps": 32},
                   "full": {"images": 2000, "inputs": 4, "inhibitors": 2, "featvis_steps": 512}},
        "outputs": ["png"],
    },
    "circuits/ablation": {
        "make": "make_ablation",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 160, "reference": 160, "shown": 8},
                   "full": {"images": 1000, "reference": 1000, "shown": 10}},
        "outputs": ["png"],
    },
    "circuits/patching": {
        "make": "make_patching",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 400, "pairs": 8, "target_class": "arc", "donor_class": "circle"},
                   "full": {"images": 2000, "pairs": 48, "target_class": "arc", "donor_class": "circle"}},
        "outputs": ["png"],
    },
    "circuits/integrated-gradients": {
        "make": "make_integrated_gradients",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 200, "steps": 32, "classes": ["line", "arc", "corner", "cross"]},
                   "full": {"images": 2000, "steps": 128, "classes": ["line", "arc", "corner", "cross"]}},
        "outputs": ["png"],
    },
    "circuits/ig-convergence": {
        "make": "make_ig_convergence",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 200, "inputs": 4, "steps": [2, 4, 8, 16, 32]},
                   "full": {"images": 2000, "inputs": 8, "steps": [2, 4, 8, 16, 32, 64, 128, 256]}},
        "outputs": ["png"],
    },
    "circuits/kv-keys": {
        "make": "make_kv_keys",
        "models": ["digits-mlp"],
        "outputs": ["png"],
    },
    "circuits/kv-correct": {
        "make": "make_kv_correct",
        "models": ["digits-mlp"],
        "params": {"digit": 3, "pairs": 4},
        "outputs": ["png"],
    },
    "circuits/kv-wrong": {
        "make": "make_kv_wrong",
        "models": ["digits-mlp"],
        "params": {"pairs": 4},
        "outputs": ["png"],
    },
    "circuits/kv-calculation": {
        "make": "make_kv_calculation",
        "models": ["digits-mlp"],
        "params": {"digit": 3, "pairs": 3},
        "outputs": ["png"],
    },
}

SIGNED = "RdBu_r"
DETECTOR_NAMES = {"arc": "curve", "corner": "corner"}
EXCITE, INHIBIT = "#B2182B", "#2166AC"     # the red and blue ends of RdBu_r


# --- shared helpers --------------------------------------------------------------------------

def shapes_test(ctx, count):
    from mechinterp.data import load_dataset
    data = load_dataset("shapes", "test", count=count)
    return data.images.to(ctx.device), data.labels.to(ctx.device), data.class_names


def shapes_train(ctx, count):
    from mechinterp.data import load_dataset
    return load_dataset("shapes", "train", count=count).images.to(ctx.device)


def digits_test(ctx):
    from mechinterp.data import load_dataset
    data = load_dataset("digits", "test")
    return data.images.to(ctx.device), data.labels.to(ctx.device)


def no_ticks(axis):
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def show_signed(axis, image, limit=None):
    """A signed 2-D map in RdBu_r, symmetric around zero (red excites, blue inhibits)."""
    image = np.asarray(image, dtype=float)
    limit = limit or float(np.abs(image).max()) or 1.0
    axis.imshow(image, cmap=SIGNED, vmin=-limit, vmax=limit, interpolation="nearest")
    no_ticks(axis)


def show_rgb(axis, image_chw):
    axis.imshow(np.clip(image_chw.detach().cpu().permute(1, 2, 0).numpy(), 0, 1),
                interpolation="nearest")
    no_ticks(axis)


def filter_picture(weight):
    """A first-layer filter (C, h, w) as an RGB picture scaled around grey."""
    from mechinterp.universality.filters import filters_as_images
    return filters_as_images(weight.detach().cpu()[None].numpy())[0]


def max_positions(activation):
    """(N, C, H, W) -> per image and unit: max value and its (y, x)."""
    flat = activation.flatten(2)
    values, where = flat.max(2)
    width = activation.shape[-1]
    return values, torch.stack([where // width, where % width], -1)


def top_crops(images, activation, unit, count, size):
    """Crops around the strongest position of `unit` in its top `count` images (dataset examples)."""
    values, positions = max_positions(activation)
    order = values[:, unit].argsort(descending=True)[:count]
    scale = images.shape[-1] / activation.shape[-1]
    padded = torch.nn.functional.pad(images, [size] * 4, mode="replicate")
    crops = []
    for index in order:
        y, x = (positions[index, unit].float() * scale + scale / 2).long().tolist()
        crops.append(padded[index, :, y + size - size // 2:y + size + size - size // 2,
                            x + size - size // 2:x + size + size - size // 2])
    return crops, [int(i) for i in order]


def top_indices(activation, unit, count):
    """Indices of the images on which `unit` peaks highest."""
    values, _ = max_positions(activation)
    return values[:, unit].argsort(descending=True)[:count]


def class_selectivity(values, labels, class_index):
    """Per unit: (mean on the class - mean on the rest) / pooled standard deviation."""
    inside, outside = values[labels == class_index], values[labels != class_index]
    spread = torch.sqrt((inside.var(0) + outside.var(0)) / 2).clamp(min=1e-6)
    return (inside.mean(0) - outside.mean(0)) / spread


# --- circuits/curve-circuit --------------------------------------------------------------------

def pick_curve_unit(model, images, labels, class_names, layer):
    """The unit of `layer` most selective for arcs (a curve detector), else for corners."""
    from mechinterp.hooks import run_with_cache
    _, cache = run_with_cache(model, images, [layer])
    values, _ = max_positions(cache[layer])
    best = None
    for name in ("arc", "corner"):
        if name in class_names:
            selectivity = class_selectivity(values, labels, class_names.index(name))
            unit = int(selectivity.argmax())
            if best is None or selectivity[unit] > best[2]:
                best = (name, unit, float(selectivity[unit]))
    if best is None:
        raise ValueError(f"the dataset has no 'arc' or 'corner' class: {class_names}")
    return best, cache[layer]


def input_ablation_drop(model, images, source_layer, layer, units, target_unit, top_indices):
    """Fraction of the target's peak activation (on its top images) lost when `units` are zeroed."""
    from mechinterp.hooks import capture, intervene, zero_units
    batch = images[top_indices]
    with torch.no_grad(), capture(model, [layer]) as clean:
        model(batch)
    with torch.no_grad(), capture(model, [layer]) as ablated, intervene(model, {source_layer: zero_units(units)}):
        model(batch)
    before = clean[layer][:, target_unit].flatten(1).max(1).values
    after = ablated[layer][:, target_unit].flatten(1).max(1).values
    return float(1 - after.sum() / before.sum().clamp(min=1e-8))


def feature_pictures(model, layer, units, steps):
    """Feature visualisations of `units` of `layer` (mechinterp.featvis), or None where the
    featvis package is not there; the figure then shows the units' filters instead."""
    try:
        from mechinterp.featvis.objectives import channel
        from mechinterp.featvis.render import render
    except ImportError:
        return None
    return render(model, channel(layer, list(units)), steps=steps, progress=False).images


def make_curve_circuit(ctx):
    from mechinterp.circuits.weights import unit_circuit
    from mechinterp.hooks import run_with_cache
    model = ctx.model("shapes-cnn-a")
    images, labels, class_names = shapes_test(ctx, ctx.params["images"])
    source_layer, conv_layer, layer = model.feature_layers[0], model.conv_layers[1], model.feature_layers[1]
    (kind, unit, selectivity), target_acts = pick_curve_unit(model, images, labels, class_names, layer)
    circuit = unit_circuit(model, conv_layer, unit, ctx.params["inputs"], ctx.params["inhibitors"])
    inputs = circuit.excitatory + circuit.inhibitory
    _, source_cache = run_with_cache(model, images, [source_layer])
    target_crops, _ = top_crops(images, target_acts, unit, 3, 14)
    drop = input_ablation_drop(model, images, source_layer, layer, [s.unit for s in circuit.excitatory],
                               unit, top_indices(target_acts, unit, 16))
    # a first-layer unit's picture is its filter; the target gets a feature visualisation
    target_picture = feature_pictures(model, conv_layer, [unit], ctx.params["featvis_steps"])
    first_conv = dict(model.named_modules())[model.conv_layers[0]]
    fig = draw_circuit(circuit, inputs, first_conv, target_picture, images, source_cache[source_layer],
                       target_crops, kind, unit, layer)
    ctx.save(fig)
    return {"model": "shapes-cnn-a", "layer": layer, "target_unit": unit, "detects": kind,
            "selectivity": selectivity, "circuit": circuit.to_dict(),
            "excitatory_units": [s.unit for s in circuit.excitatory],
            "inhibitory_units": [s.unit for s in circuit.inhibitory],
            "activation_drop_when_excitatory_inputs_zeroed": drop,
            "target_picture": "feature visualisation" if target_picture is not None else "dataset examples",
            "kernel_size": list(circuit.kernels[inputs[0].unit].shape)}


def draw_circuit(circuit, inputs, first_conv, target_picture, images, source_acts, target_crops,
                 kind, unit, layer):
    """Columns of input units (filter, dataset example, kernel into the target) -> the target
    (its feature visualisation when there is one, and its top dataset examples)."""
    fig = plt.figure(figsize=(10, 5.6))
    columns = len(inputs)
    grid = GridSpec(3, columns + 2, figure=fig, width_ratios=[1] * columns + [0.35, 1.6],
                    hspace=0.25, wspace=0.15)
    limit = max(float(k.abs().max()) for k in circuit.kernels.values())
    for column, strength in enumerate(inputs):
        excites = strength in circuit.excitatory
        axis = fig.add_subplot(grid[0, column])
        axis.imshow(filter_picture(first_conv.weight[strength.unit]), interpolation="nearest")
        no_ticks(axis)
        axis.set_title(f"unit {strength.unit}", fontsize=13, color=EXCITE if excites else INHIBIT)
        crops, _ = top_crops(images, source_acts, strength.unit, 1, 10)
        show_rgb(fig.add_subplot(grid[1, column]), crops[0])
        kernel_axis = fig.add_subplot(grid[2, column])
        show_signed(kernel_axis, circuit.kernels[strength.unit].cpu(), limit)
        kernel_axis.set_xlabel("excites" if excites else "inhibits", fontsize=12,
                               color=EXCITE if excites else INHIBIT)
    fig.axes[0].set_ylabel("filter", fontsize=12)
    fig.axes[1].set_ylabel("top\nexample", fontsize=12)
    fig.axes[2].set_ylabel(f"kernel\n→ {unit}", fontsize=12)
    target_grid = grid[:, columns + 1].subgridspec(3, 1, hspace=0.08)
    target_images = ([target_picture[0]] if target_picture is not None else []) + list(target_crops)
    for row, picture in enumerate(target_images[:3]):
        axis = fig.add_subplot(target_grid[row])
        show_rgb(axis, picture)
        if row == 0:
            axis.set_title(f"{layer} unit {unit}", fontsize=13)
    name = DETECTOR_NAMES.get(kind, kind)
    fig.suptitle(f"A {name} detector read off the weights: layer-1 units → {layer} unit {unit}",
                 fontsize=17, y=1.04)
    return fig


# --- circuits/ablation ---------------------------------------------------------------------

def make_ablation(ctx):
    from mechinterp.circuits.ablation import METHODS, ablate_each_unit, ablation_effect
    model = ctx.model("shapes-cnn-a")
    images, labels, class_names = shapes_test(ctx, ctx.params["images"])
    reference = shapes_train(ctx, ctx.params["reference"])
    layer = model.feature_layers[1]
    effects = {method: ablate_each_unit(model, images, labels, layer, method, reference)
               for method in METHODS}
    ranking = sorted(range(len(effects["mean"])), key=lambda u: -effects["mean"][u].loss_change)
    shown = ranking[:ctx.params["shown"]]
    top_three = ablation_effect(model, images, labels, layer, shown[:3], "mean", reference)
    fig = draw_ablation(effects, shown, top_three, class_names, layer)
    ctx.save(fig)
    return {"model": "shapes-cnn-a", "layer": layer, "images": len(images),
            "clean_accuracy": effects["zero"][0].clean_accuracy, "ranked_units": shown,
            "top_unit": shown[0], "top_unit_mean": effects["mean"][shown[0]].to_dict(),
            "top_unit_zero": effects["zero"][shown[0]].to_dict(),
            "top_unit_resample": effects["resample"][shown[0]].to_dict(),
            "top_three_mean": top_three.to_dict(),
            "per_unit": {m: [e.to_dict() for e in effects[m]] for m in METHODS}}


def draw_ablation(effects, shown, top_three, class_names, layer):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5.6), gridspec_kw={"width_ratios": [1.5, 1]})
    width = 0.27
    positions = np.arange(len(shown))
    for offset, method in zip((-width, 0, width), ("zero", "mean", "resample")):
        changes = [effects[method][u].loss_change for u in shown]
        left.bar(positions + offset, changes, width, label=method)
    for position, unit in zip(positions, shown):
        top = max(effects[m][unit].loss_change for m in ("zero", "mean", "resample"))
        left.annotate(f"d={effects['mean'][unit].loss_effect_size:.2f}", (position, top),
                      textcoords="offset points", xytext=(0, 4), ha="center", fontsize=10)
    left.set_xticks(positions, [str(u) for u in shown])
    left.set_xlabel(f"{layer} unit, ranked by mean ablation\n(d: effect size of mean ablation)",
                    fontsize=14)
    left.set_ylabel("loss increase (nats)")
    left.legend(title="ablation")
    left.set_title("One unit at a time")
    change = np.array(top_three.per_class_accuracy_change) * 100
    right.barh(class_names, change, color=["#D55E00" if c < 0 else "#0072B2" for c in change])
    right.invert_yaxis()
    right.axvline(0, color="black", linewidth=1)
    right.set_xlabel("accuracy change (points)")
    right.set_title(f"Units {', '.join(map(str, top_three.units))} together")
    fig.suptitle("Ablation: which units does the network need?", fontsize=18)
    fig.tight_layout()
    return fig


# --- circuits/patching ---------------------------------------------------------------------

def correctly_classified(model, images, labels, class_index, count):
    """Up to `count` images of the class that the model gets right (at least one, or an error)."""
    with torch.no_grad():
        predicted = model(images).argmax(1)
    chosen = torch.nonzero((labels == class_index) & (predicted == labels)).flatten()[:count]
    if len(chosen) == 0:
        raise ValueError(f"no correctly classified image of class {class_index} among "
                         f"{len(images)}; raise 'images' in the figure's params")
    return images[chosen]


def make_patching(ctx):
    from mechinterp.circuits.patching import patching_heatmap
    model = ctx.model("shapes-cnn-a")
    images, labels, class_names = shapes_test(ctx, ctx.params["images"])
    target_index = class_names.index(ctx.params["target_class"])
    donor_index = class_names.index(ctx.params["donor_class"])
    target = correctly_classified(model, images, labels, target_index, ctx.params["pairs"])
    donor = correctly_classified(model, images, labels, donor_index, ctx.params["pairs"])
    pairs = min(len(target), len(donor))
    target, donor = target[:pairs], donor[:pairs]
    layers = list(model.feature_layers)
    heat = patching_heatmap(model, target, donor, layers, target_index, donor_index)
    ctx.save(draw_patching(heat, ctx.params["target_class"], ctx.params["donor_class"]))
    return patching_numbers(heat, layers, ctx.params, pairs)


def patching_numbers(heat, layers, params, pairs):
    rows = {}
    for row, layer in enumerate(layers):
        result = heat.per_unit[layer]
        mean, spread = result.recovered.mean(0), result.recovered.std(0)
        best = int(mean.argmax())
        rows[layer] = {"whole_layer": float(heat.whole_layer[row]), "best_unit": result.units[best],
                       "best_unit_recovered": float(mean[best]),
                       "best_unit_effect_size": float(mean[best] / spread[best].clamp(min=1e-8)),
                       "sum_of_units": float(mean.sum()), "per_unit_mean": mean.tolist()}
    return {"model": "shapes-cnn-a", "target_class": params["target_class"],
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

def one_per_class(model, images, labels, class_names, wanted):
    """For each wanted class, its first correctly classified image (else its best-scored one)."""
    with torch.no_grad():
        logits = model(images)
    picks = []
    for name in wanted:
        index = class_names.index(name)
        members = torch.nonzero(labels == index).flatten()
        if len(members) == 0:
            raise ValueError(f"no {name!r} image among {len(images)}; raise 'images' in the params")
        correct = members[logits[members].argmax(1) == index]
        picks.append(int(correct[0]) if len(correct) else int(members[logits[members, index].argmax()]))
    return picks


def make_integrated_gradients(ctx):
    from mechinterp.circuits.attribution import (integrated_gradients, layer_integrated_gradients,
                                                 saliency)
    model = ctx.model("shapes-cnn-a")
    images, labels, class_names = shapes_test(ctx, ctx.params["images"])
    picks = one_per_class(model, images, labels, class_names, ctx.params["classes"])
    inputs, targets = images[picks], labels[picks]
    steps = ctx.params["steps"]
    ig = integrated_gradients(model, inputs, targets, baseline=0.0, steps=steps, internal_batch_size=256)
    gradients = saliency(model, inputs, targets, absolute=True)
    layer = model.feature_layers[1]
    layer_ig = layer_integrated_gradients(model, inputs, layer, targets, baseline=0.0, steps=steps,
                                          internal_batch_size=256)
    ctx.save(draw_ig_maps(inputs, gradients, ig, ctx.params["classes"], steps))
    unit_totals = layer_ig.attributions.flatten(2).sum(2)
    with torch.no_grad():
        correct = (model(inputs).argmax(1) == targets).tolist()
    return {"model": "shapes-cnn-a", "steps": steps, "rule": "gausslegendre", "baseline": "black image",
            "classes": ctx.params["classes"],
            "correctly_classified": correct,
            "completeness_gap": ig.completeness_gap.tolist(),
            "relative_gap": ig.relative_gap.tolist(),
            "max_relative_gap": float(ig.relative_gap.max()),
            "output_difference": ig.output_difference.tolist(),
            "layer": layer, "layer_relative_gap": layer_ig.relative_gap.tolist(),
            "layer_top_units": unit_totals.argsort(1, descending=True)[:, :3].tolist()}


def draw_ig_maps(inputs, gradients, ig, class_names, steps):
    fig, axes = plt.subplots(3, len(inputs), figsize=(9, 7))
    maps = ig.attributions.sum(1).detach().cpu().numpy()
    sensitivity = gradients.sum(1).detach().cpu().numpy()
    for column, name in enumerate(class_names):
        show_rgb(axes[0, column], inputs[column])
        axes[0, column].set_title(name)
        axes[1, column].imshow(sensitivity[column], cmap="viridis", interpolation="nearest")
        no_ticks(axes[1, column])
        show_signed(axes[2, column], maps[column])
        gap = float(ig.relative_gap[column]) * 100
        axes[2, column].set_xlabel(f"gap {gap:.2f}%", fontsize=14)
    for row, label in enumerate(["input", "|gradient|", "IG"]):
        axes[row, 0].set_ylabel(label)
    fig.suptitle(f"Integrated gradients from a black image ({steps} Gauss–Legendre steps)", fontsize=17)
    return fig


def make_ig_convergence(ctx):
    from mechinterp.circuits.attribution import RULES, integrated_gradients
    model = ctx.model("shapes-cnn-a")
    images, labels, _ = shapes_test(ctx, ctx.params["images"])
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
    return {"model": "shapes-cnn-a", "inputs": len(inputs), "steps": ctx.params["steps"],
            "pooled_relative_gap": gaps,
            "final_gap_percent": {rule: gaps[rule][-1] * 100 for rule in RULES},
            "worst_final_gap_percent": max(gaps[rule][-1] * 100 for rule in RULES)}


# --- the workshop's key-value figures (digits-mlp) -----------------------------------------

def digits_pairs(ctx):
    from mechinterp.circuits.key_value import check_against_forward, key_value_pairs
    model = ctx.model("digits-mlp")
    images, labels = digits_test(ctx)
    pairs = key_value_pairs(model, "fc1", "fc2")
    errors = check_against_forward(model, pairs, images, "relu1")
    with torch.no_grad():
        predicted = model(images).argmax(1)
    return model, pairs, images, labels, predicted, errors


def make_kv_keys(ctx):
    _, pairs, images, labels, predicted, errors = digits_pairs(ctx)
    keys = pairs.keys.view(-1, 8, 8).cpu().numpy()
    votes = pairs.values.argmax(1).tolist()
    columns = 8
    rows = int(np.ceil(len(keys) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(10, 5.6))
    for unit, axis in enumerate(np.ravel(axes)):
        no_ticks(axis)
        if unit < len(keys):
            show_signed(axis, keys[unit])
            axis.set_title(f"{unit}→{votes[unit]}", fontsize=12)
    fig.suptitle("The 32 keys (input weights) as 8×8 images; unit → the digit its value favours",
                 fontsize=16)
    ctx.save(fig)
    return {"units": len(keys), "votes_for": votes, "accuracy": float((predicted == labels).float().mean()),
            **errors}


def value_bars(axis, value, highlight=None, other=None):
    colours = ["#999999"] * len(value)
    if highlight is not None:
        colours[highlight] = EXCITE
    if other is not None:
        colours[other] = INHIBIT
    axis.bar(range(len(value)), value, color=colours)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(value)), [str(d) for d in range(len(value))], fontsize=9)
    axis.tick_params(axis="y", labelsize=9)


def make_kv_correct(ctx):
    from mechinterp.circuits.key_value import top_pairs
    _, pairs, images, labels, predicted, errors = digits_pairs(ctx)
    digit = ctx.params["digit"]
    index = int(torch.nonzero((labels == digit) & (predicted == digit)).flatten()[0])
    top = top_pairs(pairs, images[index], digit, count=ctx.params["pairs"])
    fig = draw_pairs(pairs, images[index], top, digit, None,
                     f"Why the network says {digit}: the pairs behind logit {digit}")
    ctx.save(fig)
    logits = pairs.logits(images[index:index + 1])[0]
    return {"test_index": index, "digit": digit, "logit": float(logits[digit]),
            "output_bias": float(pairs.output_bias[digit]),
            "pairs": [p.to_dict() for p in top],
            "top_share": sum(p.share for p in top),
            "active_units": int((pairs.key_activations(images[index:index + 1]) > 0).sum()),
            **errors}


def draw_pairs(pairs, image, chosen, highlight, other, title, what="adds"):
    fig = plt.figure(figsize=(10, 5.6))
    grid = GridSpec(3, len(chosen) + 1, figure=fig, height_ratios=[1.2, 1, 0.25], hspace=0.45)
    digit_axis = fig.add_subplot(grid[:2, 0])
    digit_axis.imshow(image.view(8, 8).cpu().numpy(), cmap="gray_r", interpolation="nearest")
    no_ticks(digit_axis)
    digit_axis.set_title("input")
    for column, pair in enumerate(chosen, start=1):
        key_axis = fig.add_subplot(grid[0, column])
        show_signed(key_axis, pairs.keys[pair.unit].view(8, 8).cpu().numpy())
        key_axis.set_title(f"key {pair.unit}\nfires {pair.activation:.2f}", fontsize=13)
        value_axis = fig.add_subplot(grid[1, column])
        value_bars(value_axis, pairs.values[pair.unit].cpu().numpy(), highlight, other)
        value_axis.set_title("value", fontsize=12)
        text_axis = fig.add_subplot(grid[2, column])
        text_axis.axis("off")
        text_axis.text(0.5, 0.5, f"{what} {pair.contribution:+.2f}\n{abs(pair.share) * 100:.0f}% of all",
                       ha="center", va="center", fontsize=13)
    if other is not None:
        digit_axis.set_xlabel(f"red: votes for {highlight}\nblue: votes for {other}", fontsize=12)
    fig.suptitle(title, fontsize=17)
    return fig


def silence_pushers(model, image, units):
    """Predictions after silencing the first 1, 2, ... of `units` in relu1 (the test of the story)."""
    from mechinterp.hooks import intervene, zero_units
    answers = []
    for count in range(1, len(units) + 1):
        with torch.no_grad(), intervene(model, {"relu1": zero_units(units[:count])}):
            answers.append(int(model(image[None]).argmax(1)))
    return answers


def clearest_mistake(model, pairs, images, labels, predicted, count):
    """The mistake fixed by silencing the fewest of its top pushers (ties: the largest margin).

    Returns (index, pushers, predictions after silencing 1..count pushers, pushers needed)."""
    from mechinterp.circuits.key_value import wrong_class_pushers
    logits = pairs.logits(images)
    best = None
    for index in torch.nonzero(predicted != labels).flatten().tolist():
        true, guess = int(labels[index]), int(predicted[index])
        pushers = wrong_class_pushers(pairs, images[index], true, guess, count=count)
        answers = silence_pushers(model, images[index], [p.unit for p in pushers])
        needed = next((k + 1 for k, answer in enumerate(answers) if answer == true), count + 1)
        margin = float(logits[index, guess] - logits[index, true])
        if best is None or (needed, -margin) < (best[3], -best[4]):
            best = (index, pushers, answers, needed, margin)
    if best is None:
        raise ValueError("digits-mlp classifies every test digit correctly: nothing to explain")
    return best


def make_kv_wrong(ctx):
    from mechinterp.circuits.key_value import wrong_class_pushers
    model, pairs, images, labels, predicted, errors = digits_pairs(ctx)
    index, pushers, after_silencing, needed, margin = clearest_mistake(
        model, pairs, images, labels, predicted, ctx.params["pairs"])
    true, guess = int(labels[index]), int(predicted[index])
    everything = wrong_class_pushers(pairs, images[index], true, guess, count=None)
    fig = draw_pairs(pairs, images[index], pushers, guess, true,
                     f"A {true} read as {guess}: the pairs that pushed {guess} above {true}",
                     what="margin")
    ctx.save(fig)
    positive = sum(p.contribution for p in everything if p.contribution > 0)
    return {"test_index": index, "true_class": true, "predicted_class": guess, "margin": margin,
            "margin_without_top_pusher": margin - pushers[0].contribution,
            "predictions_after_silencing_top_pushers": after_silencing,
            "pushers_silenced_to_fix": needed if needed <= len(pushers) else None,
            "bias_difference": float(pairs.output_bias[guess] - pairs.output_bias[true]),
            "pushers": [p.to_dict() for p in pushers],
            "top_pusher": pushers[0].unit,
            "top_pusher_margin": pushers[0].contribution,
            "top_pushers_share_of_push": sum(p.contribution for p in pushers) / positive,
            "mistakes": int((predicted != labels).sum()), "test_images": len(images), **errors}


def make_kv_calculation(ctx):
    from mechinterp.circuits.key_value import explain
    model, pairs, images, labels, predicted, errors = digits_pairs(ctx)
    digit = ctx.params["digit"]
    index = int(torch.nonzero((labels == digit) & (predicted == digit)).flatten()[0])
    calculation = explain(pairs, images[index])
    with torch.no_grad():
        forward = model(images[index:index + 1])[0]
    shown = calculation.contributions[:, digit].argsort(descending=True)[:ctx.params["pairs"]].tolist()
    fig = draw_calculation(pairs, images[index], calculation, shown, digit)
    ctx.save(fig)
    rest = [h for h in range(pairs.count) if h not in shown]
    return {"test_index": index, "digit": digit, "shown_units": shown,
            "steps": [{"unit": h, "key_dot_input": float(calculation.key_dot_input[h]),
                       "activation": float(calculation.activations[h]),
                       "contribution": calculation.contributions[h].tolist()} for h in shown],
            "rest_contribution": calculation.contributions[rest].sum(0).tolist(),
            "rest_count": len(rest), "silent_units": pairs.count - len(calculation.active_units),
            "output_bias": calculation.output_bias.tolist(), "logits": calculation.logits.tolist(),
            "predicted": calculation.predicted,
            "max_error_vs_forward": float((calculation.logits - forward).abs().max()), **errors}


def draw_calculation(pairs, image, calculation, shown, digit):
    """One row per step: key . x + b -> ReLU -> x value = contribution; then the sum."""
    rest = [h for h in range(pairs.count) if h not in shown]
    rows = len(shown) + 2
    fig = plt.figure(figsize=(10, 5.6))
    grid = GridSpec(rows, 4, figure=fig, width_ratios=[0.6, 1.5, 1.2, 1.6], hspace=0.55, wspace=0.3)
    limit = float(calculation.contributions.abs().max())
    for row, unit in enumerate(shown):
        draw_calculation_row(fig, grid, row, pairs, calculation, unit, digit, limit)
    silent = pairs.count - len(calculation.active_units)
    draw_total_row(fig, grid, rows - 2, calculation.contributions[rest].sum(0), digit,
                   f"+ the other {len(rest)} pairs ({silent} silenced by the ReLU)", bold=False)
    draw_total_row(fig, grid, rows - 1, calculation.logits, digit,
                   f"+ output bias  =  logits: the answer is {calculation.predicted}", bold=True)
    fig.suptitle(f"The calculation for one {digit}, pair by pair", fontsize=17)
    return fig


def draw_calculation_row(fig, grid, row, pairs, calculation, unit, digit, limit):
    """key | key.x + b -> ReLU | value | activation x value, for one pair."""
    key_axis = fig.add_subplot(grid[row, 0])
    show_signed(key_axis, pairs.keys[unit].view(8, 8).cpu().numpy())
    key_axis.set_ylabel(f"{unit}", fontsize=12, rotation=0, labelpad=14, va="center")
    text = fig.add_subplot(grid[row, 1])
    text.axis("off")
    text.text(0.05, 0.5, f"{calculation.key_dot_input[unit]:+.2f} → {calculation.activations[unit]:.2f}",
              va="center", fontsize=14)
    value_axis = fig.add_subplot(grid[row, 2])
    value_bars(value_axis, pairs.values[unit].cpu().numpy(), digit)
    contribution_axis = fig.add_subplot(grid[row, 3])
    value_bars(contribution_axis, calculation.contributions[unit].cpu().numpy(), digit)
    contribution_axis.set_ylim(-limit, limit)
    if row == 0:
        headers = ["key", "key·x + b, then ReLU", "value", "activation × value"]
        for axis, header in zip((key_axis, text, value_axis, contribution_axis), headers):
            axis.set_title(header, fontsize=13)


def draw_total_row(fig, grid, row, values, digit, caption, bold):
    """A caption across the first columns and a bar chart of ten numbers in the last."""
    value_bars(fig.add_subplot(grid[row, 3]), values.cpu().numpy(), digit)
    note = fig.add_subplot(grid[row, :3])
    note.axis("off")
    note.text(0.98, 0.5, caption, ha="right", va="center", fontsize=13 if bold else 12,
              fontweight="bold" if bold else "normal")
