"""Universality, part four: walking between classes, straight and adversarially.

universality/interpolation          the class along the straight line between two inputs
universality/adversarial            attack success against epsilon; the SAE features an attack hijacks
universality/adversarial-path       a targeted attack walking an input from one class to another

The SAE reads the model's last feature layer (its description's feature_layers[-1]), the layer the
classifier reads. Each figure reads its first declared model and that model's own data; the classes
(start, end, target) and the image counts (images, sae_images, reference_images) are params, each
checked against that data with a message naming the param to change.
"""
import matplotlib.pyplot as plt
import numpy as np

from figures_src.plotting import input_name, show_image, show_signed

FIGURES = {
    "universality/interpolation": {
        "make": "make_interpolation",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 500, "start": "line", "end": "circle", "steps": 9,
                             "dense_steps": 101, "layer": "relu3"},
                   "full": {"images": 500, "start": "line", "end": "circle", "steps": 9,
                            "dense_steps": 101, "layer": "relu3"}},
        "outputs": ["png"],
    },
    "universality/adversarial": {
        "make": "make_adversarial",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 120, "sae_images": 2000, "sae_steps": 300, "steps": 5,
                             "linf": [0, 0.005, 0.01, 0.02, 0.04],
                             "l2": [0, 0.25, 0.5, 1.0, 2.0], "hijack_epsilon": 0.01,
                             "reference_linf": 0.02, "reference_l2": 0.5, "reference_images": 2000},
                   "full": {"images": 500, "sae_images": 8000, "sae_steps": 2000, "steps": 10,
                            "linf": [0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04],
                            "l2": [0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0], "hijack_epsilon": 0.01,
                            "reference_linf": 0.02, "reference_l2": 0.5, "reference_images": 2000}},
        "outputs": ["png"],
    },
    "universality/adversarial-path": {
        "make": "make_adversarial_path",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 500, "start": "line", "target": "circle", "epsilon": 3.0,
                             "steps": 40, "shown": 7},
                   "full": {"images": 500, "start": "line", "target": "circle", "epsilon": 3.0,
                            "steps": 40, "shown": 7}},
        "outputs": ["png"],
    },
}


def first_of_class(ctx, data, model, param):
    """The first test image of the class params[param] names that the model classifies correctly
    (else its best-scored)."""
    from mechinterp.examples import one_per_class
    ctx.class_index(data.class_names, param)
    name = ctx.params[param]
    return data.images[one_per_class(model, data.images, data.labels, data.class_names, [name])[0]]


def path_strip(fig, grid, inputs, titles):
    """The top row of a path figure: the inputs along the path, each titled; an image as itself,
    a vector (a tabular model's) as one row of signed cells on a scale the row shares."""
    limit = max(float(item.abs().max()) for item in inputs) or 1.0
    for column, (item, title) in enumerate(zip(inputs, titles)):
        axis = fig.add_subplot(grid[0, column])
        if item.ndim == 3:
            show_image(axis, item, title, fontsize=12)
            continue
        show_signed(axis, item.reshape(1, -1), limit)
        axis.set_aspect("auto")
        axis.set_title(title, fontsize=12, fontweight="normal")


# --- interpolation -------------------------------------------------------------------------------

def make_interpolation(ctx):
    from mechinterp.representations.geometry import interpolation_path, path_length
    data = ctx.counted_dataset("test", "images")
    model = ctx.model(ctx.declared_models[0])
    start = first_of_class(ctx, data, model, "start")
    end = first_of_class(ctx, data, model, "end")
    dense = interpolation_path(model, start, end, ctx.params["dense_steps"], ctx.layer(model))
    coarse = interpolation_path(model, start, end, ctx.params["steps"])
    fig = plt.figure(figsize=(13, 6))
    grid = fig.add_gridspec(2, len(coarse.alphas), height_ratios=[1, 2.2])
    path_strip(fig, grid, coarse.images, [data.class_names[c] for c in coarse.classes])
    curve = fig.add_subplot(grid[1, :])
    for index in sorted(set(dense.classes.tolist()) | {ctx.class_index(data.class_names, "end")}):
        curve.plot(dense.alphas, dense.probabilities[:, index], label=data.class_names[index])
    curve.set_xlabel(f"α   ({'image' if input_name(model) == 'pixels' else 'input'} = (1 − α)·start + α·end)")
    curve.set_ylabel("probability")
    curve.legend(loc="center right", fontsize=12)
    travelled, straight = path_length(dense.features)
    ctx.save(fig)
    switches = np.flatnonzero(np.diff(dense.classes)) + 1
    distance = float((end - start).flatten().norm())
    return {"start": ctx.params["start"], "end": ctx.params["end"],
            "classes_along_path": [data.class_names[c] for c in coarse.classes],
            "class_switches": dense.class_switches,
            "switch_alphas": dense.alphas[switches],
            "l2_distance_at_first_switch": (float(dense.alphas[switches[0]]) * distance
                                            if len(switches) else None),
            "l2_distance_start_to_end": distance, "activation_path_ratio": travelled / straight}


# --- adversarial examples -------------------------------------------------------------------------

def pooled_features(model, images, layer, device):
    """The layer's channel maxima (what the classifier reads), on `device`."""
    from mechinterp.activations import layer_features
    return layer_features(model, images, [layer], pool="max")[layer].to(device)


def train_feature_sae(ctx, model, layer, images, steps):
    """A TopK SAE on `layer`'s channel maxima over training images: (sae, explained variance,
    dead fraction)."""
    import torch
    from mechinterp.superposition.sae import TopKSAE
    from mechinterp.superposition.sae_metrics import explained_variance
    from mechinterp.superposition.sae_training import row_batches, train_sae
    vectors = pooled_features(model, images, layer, ctx.device)
    sae = TopKSAE(vectors.shape[1], 4 * vectors.shape[1], k=8, seed=ctx.seed).to(ctx.device)
    log = train_sae(sae, row_batches(vectors, 256, ctx.seed), steps=steps, lr=1e-3)
    with torch.no_grad():
        reconstruction, _ = sae(vectors)
    return sae.eval(), explained_variance(vectors, reconstruction), log.dead_fraction


def attack_rates(model, data, params, bounds):
    from mechinterp.adversarial import success_vs_epsilon
    return {"fgsm": success_vs_epsilon(model, data.images, data.labels, params["linf"], "fgsm", bounds=bounds),
            "pgd_linf": success_vs_epsilon(model, data.images, data.labels, params["linf"],
                                           "pgd_linf", params["steps"], bounds),
            "pgd_l2": success_vs_epsilon(model, data.images, data.labels, params["l2"],
                                         "pgd_l2", params["steps"], bounds)}


def make_adversarial(ctx):
    from mechinterp.adversarial import input_bounds
    params = ctx.params
    # every count is checked before the attacks run (minutes on the full profile)
    data, reference = ctx.counted_dataset("test", "images"), ctx.counted_dataset("train", "reference_images")
    sae_images = ctx.counted_dataset("train", "sae_images").images
    model = ctx.model(ctx.declared_models[0])
    layer = model.feature_layers[-1]
    bounds = input_bounds(data.images)      # [0, 1] for images; standardised features reach past it
    rates = attack_rates(model, data, params, bounds)
    sae, explained, dead = train_feature_sae(ctx, model, layer, sae_images, params["sae_steps"])
    hijack, preferred, flipped, top_is_new_class = read_attack_through_sae(ctx, model, sae, layer, data,
                                                                           reference, bounds)
    ctx.save(draw_adversarial(params, rates, hijack, preferred, data.class_names, f"{input_name(model)[:-1]} "
                              f"range {bounds[0]:.3g}–{bounds[1]:.3g}"))
    linf_index, l2_index = params["linf"].index(params["reference_linf"]), params["l2"].index(params["reference_l2"])
    at_reference = {"linf": params["reference_linf"], "fgsm": rates["fgsm"][linf_index],
                    "pgd_linf": rates["pgd_linf"][linf_index], "l2": params["reference_l2"],
                    "pgd_l2": rates["pgd_l2"][l2_index]}
    return {"layer": layer, "images": len(data.images), "input_bounds": list(bounds), "at_reference": at_reference,
            "epsilons_linf": params["linf"], "epsilons_l2": params["l2"], "success": rates,
            "sae_explained_variance": explained, "sae_dead_fraction": dead, "flipped": flipped,
            "hijacked_increased": hijack.increased,
            "hijacked_increased_classes": [data.class_names[preferred[f]] for f in hijack.increased],
            "hijacked_decreased": hijack.decreased,
            "hijacked_decreased_classes": [data.class_names[preferred[f]] for f in hijack.decreased],
            "top_share": hijack.top_share, "top_feature_is_new_class": top_is_new_class,
            "top_feature_is_new_class_chance": 1 / (len(data.class_names) - 1)}


def read_attack_through_sae(ctx, model, sae, layer, data, reference, bounds):
    """PGD at the hijack epsilon, read in the SAE's basis on the inputs it flipped: the hijacked
    features, each feature's preferred class, the number flipped, and how often the feature the
    attack raised most belongs to the new class."""
    from mechinterp.activations import predictions
    from mechinterp.adversarial import (feature_preferred_class, hijacked_features,
                                        most_raised_feature, pgd)
    adversarial = pgd(model, data.images, data.labels, ctx.params["hijack_epsilon"], "linf",
                      ctx.params["steps"], bounds=bounds).cpu()
    clean_pred, adversarial_pred = predictions(model, data.images), predictions(model, adversarial)
    flipped = (clean_pred == data.labels) & (adversarial_pred != data.labels)
    clean = pooled_features(model, data.images[flipped], layer, ctx.device)
    attacked = pooled_features(model, adversarial[flipped], layer, ctx.device)
    preferred = feature_preferred_class(sae, pooled_features(model, reference.images, layer, ctx.device),
                                        reference.labels, len(data.class_names))
    raised = most_raised_feature(sae, clean, attacked).numpy()
    top_is_new_class = float(np.mean(preferred[raised] == adversarial_pred[flipped].numpy()))
    return hijacked_features(sae, clean, attacked, top_k=6), preferred, int(flipped.sum()), top_is_new_class


def draw_adversarial(params, rates, hijack, preferred, class_names, box: str):
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    axes[0].plot(params["linf"], rates["fgsm"], "o-", label="FGSM")
    axes[0].plot(params["linf"], rates["pgd_linf"], "s-", label=f"PGD ({params['steps']} steps)")
    axes[0].set_xlabel(f"ε  (L∞, {box})")
    axes[0].set_ylabel("attack success rate")
    axes[0].legend(loc="best")         # a curve of another model may run anywhere
    axes[1].plot(params["l2"], rates["pgd_l2"], "s-", color="#009E73", label="PGD L2")
    axes[1].set_xlabel("ε  (L2)")
    axes[1].legend(loc="best")
    for axis in axes[:2]:
        axis.set_ylim(0, 1.05)
    features = hijack.increased + hijack.decreased
    changes = hijack.increased_by + hijack.decreased_by
    axes[2].barh(range(len(features)), changes,
                 color=["#B2182B" if change > 0 else "#2166AC" for change in changes])
    axes[2].set_yticks(range(len(features)), [f"#{f} ({class_names[preferred[f]]})" for f in features],
                       fontsize=12)
    axes[2].invert_yaxis()
    axes[2].xaxis.set_major_locator(plt.MaxNLocator(4))
    axes[2].set_xlabel(f"mean SAE code change (PGD ε={params['hijack_epsilon']})")
    axes[2].set_title("hijacked SAE features (their class)", fontsize=15)
    fig.tight_layout()
    return fig


def make_adversarial_path(ctx):
    from mechinterp.adversarial import adversarial_path, input_bounds
    data = ctx.counted_dataset("test", "images")
    model = ctx.model(ctx.declared_models[0])
    start = first_of_class(ctx, data, model, "start")
    target = ctx.class_index(data.class_names, "target")
    path = adversarial_path(model, start, target, ctx.params["epsilon"], "l2", ctx.params["steps"],
                            bounds=input_bounds(data.images))
    shown = np.linspace(0, len(path.images) - 1, ctx.params["shown"]).round().astype(int)
    fig = plt.figure(figsize=(13, 6))
    grid = fig.add_gridspec(2, len(shown), height_ratios=[1, 2.0])
    path_strip(fig, grid, [path.images[step] for step in shown], [f"{step}: {data.class_names[path.classes[step]]}" for step in shown])
    curve = fig.add_subplot(grid[1, :])
    start_class = int(path.classes[0])
    curve.plot(path.distances, path.probabilities[:, start_class], "o-", markersize=4,
               label=data.class_names[start_class])
    curve.plot(path.distances, path.target_probability, "o-", markersize=4, label=ctx.params["target"])
    curve.set_xlabel(f"L2 distance from the clean {'image' if input_name(model) == 'pixels' else 'input'}")
    curve.set_ylabel("probability")
    curve.set_ylim(0, 1.05)
    curve.legend(loc="center right")
    ctx.save(fig)
    first = path.first_target_step
    return {"start": ctx.params["start"], "target": ctx.params["target"],
            "classes_along_path": [data.class_names[c] for c in path.classes],
            "first_target_step": first,
            "distance_at_flip": float(path.distances[first]) if first is not None else None,
            "final_target_probability": float(path.target_probability[-1]),
            "max_pixel_change": float((path.images[-1] - path.images[0]).abs().max())}

