"""Superposition figures: the toy models of Elhage et al. (2022) reproduced, a polysemantic neuron
of our own digits MLP, and sparse autoencoders that split it (Bricken et al. 2023, Gao et al. 2024).

superposition/intro-geometry     n=5 features in m=2 dimensions across sparsity: WᵀW and the
                                 feature vectors in the plane (2 orthogonal -> antipodal -> pentagon);
                                 with a model declared, that toy model's own W (toy_weights says
                                 what it needs), m > 2 drawn on its top two directions
superposition/phase-diagram      n=2, m=1: not represented / dedicated dimension / superposition,
                                 over feature density and the extra feature's importance
superposition/dims-per-feature   uniform importance: m/‖W‖_F² against 1/(1-S), and every feature's
                                 dimensionality D_i, with the fractions they stick to
superposition/polysemantic-vs-sae   digits-mlp: the most polysemantic neuron's top test digits, the
                                 SAE features its top activations are made of, each with its class
                                 purity and a direction-objective feature visualisation
superposition/sae-metrics        explained variance and spliced accuracy against L0, across k
                                 (TopK SAE) and the L1 coefficient (ReLU SAE)

Toy models: the intro figure's full profile uses Anthropic's notebook settings (AdamW, lr 1e-3
constant, batches of 1024, 10,000 steps); the larger sweeps and the quick profile use a cosine-
decayed lr of 1e-2 to 2e-2, which converges in 1,000-3,000 steps on a CPU. Every setting trains
several seeds (antithetic pairs) and keeps the lowest loss, as the paper does. The phase diagram
and dims-per-feature train their own models and take none: a declared model is refused, by name.
"""
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from figures_src.plotting import legend_outside, no_ticks, show_image
from mechinterp.activations import activation_stream, layer_vectors, unit_scores
from mechinterp.featvis import objectives as featvis_objectives
from mechinterp.featvis.render import RenderSettings, render
from mechinterp.superposition.experiments import (PHASE_NAMES, REPRESENTED_NORM, STICKY_FRACTIONS,
                                                  TrainSettings, intro_sweep, phase_diagram,
                                                  uniform_importance_geometry)
from mechinterp.superposition.measures import (dimensions_per_feature, feature_dimensionality,
                                               feature_gram, feature_norms)
from mechinterp.superposition.polysemantic import (class_purity, contributions_to_unit,
                                                   features_behind_unit, find_polysemantic, summary)
from mechinterp.superposition.sae import ReluSAE, TopKSAE
from mechinterp.superposition.sae_metrics import accuracy_with_sae, evaluate_sae
from mechinterp.superposition.sae_training import train_sae

QUICK_TRAIN = {"steps": 1000, "batch_size": 1024, "lr": 2e-2, "lr_schedule": "cosine", "replicas": 4}
NOTEBOOK_TRAIN = {"steps": 10_000, "batch_size": 1024, "lr": 1e-3, "lr_schedule": "constant", "replicas": 4}
SAE_MODEL = "digits-mlp"      # the workshop's 64 -> 32 -> 10 network: 32 neurons, 10 digit classes
VECTORS_PER_BATCH = 128       # an SAE step's batch: 128 digits of the MLP, fewer images of a conv layer

FIGURES = {
    "superposition/intro-geometry": {
        "make": "make_intro_geometry",
        "models": [],
        "params": {"quick": {"sparsities": [0.0, 0.7, 0.8, 0.9, 0.95], "train": {**QUICK_TRAIN, "replicas": 8}},
                   "full": {"sparsities": [0.0, 0.7, 0.8, 0.9, 0.95], "train": NOTEBOOK_TRAIN}},
        "outputs": ["png"],
    },
    "superposition/phase-diagram": {
        "make": "make_phase_diagram",
        "models": [],
        "params": {"quick": {"grid": 8, "train": {**QUICK_TRAIN, "batch_size": 256, "replicas": 2}},
                   "full": {"grid": 16, "train": {"steps": 1500, "batch_size": 256, "lr": 1e-2,
                                                  "lr_schedule": "cosine", "replicas": 4}}},
        "outputs": ["png"],
    },
    "superposition/dims-per-feature": {
        "make": "make_dims_per_feature",
        "models": [],
        "params": {"quick": {"n_features": 20, "n_hidden": 5, "points": 10, "max_inverse_density": 50,
                             "train": {**QUICK_TRAIN, "batch_size": 512, "replicas": 2}},
                   "full": {"n_features": 60, "n_hidden": 12, "points": 16, "max_inverse_density": 100,
                            "train": {"steps": 3000, "batch_size": 512, "lr": 5e-3,
                                      "lr_schedule": "cosine", "replicas": 2}}},
        "outputs": ["png"],
    },
    "superposition/polysemantic-vs-sae": {
        "make": "make_polysemantic_vs_sae",
        "models": [SAE_MODEL],
        "params": {"quick": {"layer": "relu1", "latents": 128, "l1": 0.3, "steps": 1000, "top_k": 16,
                             "shown": 8, "features": 3, "featvis_steps": 64,
                             "featvis_l2": 5.0, "featvis_lr": 0.05, "featvis_render": "naive"},
                   "full": {"layer": "relu1", "latents": 128, "l1": 0.3, "steps": 6000, "top_k": 16,
                            "shown": 8, "features": 3, "featvis_steps": 256,
                            "featvis_l2": 5.0, "featvis_lr": 0.05, "featvis_render": "naive"}},
        "outputs": ["png"],
    },
    "superposition/sae-metrics": {
        "make": "make_sae_metrics",
        "models": [SAE_MODEL],
        "params": {"quick": {"layer": "relu1", "latents": 128, "ks": [1, 4, 16], "l1": [0.03, 0.3],
                             "steps": 500, "quoted_k": 4},
                   "full": {"layer": "relu1", "latents": 128, "ks": [1, 2, 4, 8, 16],
                            "l1": [0.02, 0.05, 0.1, 0.2, 0.3, 0.5], "steps": 2000, "quoted_k": 4}},
        "outputs": ["png"],
    },
}

PHASE_COLOURS = ["#BBBBBB", "#0072B2", "#D55E00"]   # not represented, dedicated, superposition


# --- toy models ---------------------------------------------------------------------------------

def draw_feature_vectors(ax, W: np.ndarray, colours) -> None:
    """Each feature's column W_i as a line from the origin, coloured by importance."""
    for vector, colour in zip(W, colours):
        ax.plot([0, vector[0]], [0, vector[1]], color=colour, linewidth=3)
        ax.scatter(vector[0], vector[1], color=colour, s=50, zorder=3)
    limit = max(1.4, 1.1 * float(np.abs(W).max(initial=0.0)))
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.axvline(0, color="#999999", linewidth=0.8)
    no_ticks(ax)


def in_plane(W: np.ndarray) -> np.ndarray:
    """(features, 2): the feature vectors as they are when m = 2, else projected on the two
    directions of the hidden space they spread along most (their top right singular vectors)."""
    if W.shape[1] <= 2:
        return np.pad(W, ((0, 0), (0, 2 - W.shape[1])))
    return W @ np.linalg.svd(W, full_matrices=False)[2][:2].T


def draw_geometry(W: torch.Tensor, titles, suptitle: str):
    """One column per toy model of W (instances, features, hidden): WᵀW above, the feature vectors
    in the plane below (a single model: side by side). Returns (figure, features embedded per model)."""
    columns, n_features, n_hidden = W.shape
    if columns == 1:
        fig, row = plt.subplots(1, 2, figsize=(10, 5.4), layout="constrained")
        axes = np.array(row)[:, None]
    else:
        fig, axes = plt.subplots(2, columns, figsize=(12, 5.4), layout="constrained")
    embedded = [int((n > REPRESENTED_NORM).sum()) for n in feature_norms(W)]
    colours = plt.cm.viridis(np.linspace(0.0, 0.85, n_features))
    for column, (gram, title) in enumerate(zip(feature_gram(W), titles)):
        image = axes[0, column].imshow(gram.numpy(), cmap="RdBu_r", vmin=-1.2, vmax=1.2)
        axes[0, column].set_title(title)
        axes[0, column].set_xticks([])
        axes[0, column].set_yticks([])
        draw_feature_vectors(axes[1, column], in_plane(W[column].numpy()), colours)
        axes[1, column].set_xlabel(f"{embedded[column]} of {n_features} embedded", fontsize=14)
    axes[0, 0].set_ylabel("WᵀW")
    axes[1, 0].set_ylabel("W in 2-D" if n_hidden <= 2 else f"W: top 2 of {n_hidden} dims")
    fig.suptitle(suptitle, fontsize=15)
    fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.9, pad=0.01)
    return fig, embedded


def make_intro_geometry(ctx):
    if ctx.declared_models:
        return declared_toy_geometry(ctx)
    sparsities = ctx.params["sparsities"]
    result = intro_sweep(sparsities, settings=TrainSettings(**ctx.params["train"], seed=ctx.seed),
                         device=ctx.device)
    norms, dimensionality = feature_norms(result.W), feature_dimensionality(result.W)
    fig, embedded = draw_geometry(result.W, [f"S = {s:.0%}" for s in sparsities],
                                  f"{result.W.shape[1]} features, {result.W.shape[2]} dimensions: "
                                  "darker = more important (0.9^i)")
    ctx.save(fig)
    return {"sparsities": sparsities, "settings": ctx.params["train"],
            "embedded": embedded,
            "norms": norms.tolist(), "feature_dimensionality": dimensionality.tolist(),
            "dense_overlap_of_top_two": float(feature_gram(result.W)[0, 0, 1]), "loss": result.loss.tolist()}


def declared_toy_geometry(ctx):
    """The intro figure drawn for the speaker's own toy model (the first declared): its W, no sweep."""
    name = ctx.declared_models[0]
    W = toy_weights(ctx, name, ctx.model(name))
    fig, embedded = draw_geometry(W, [f"{name}: WᵀW"], f"{W.shape[1]} features, {W.shape[2]} dimensions: "
                                  "darker = earlier feature")
    ctx.save(fig)
    return {"model": name, "n_features": W.shape[1], "n_hidden": W.shape[2], "embedded": embedded[0],
            "norms": feature_norms(W)[0].tolist(),
            "feature_dimensionality": feature_dimensionality(W)[0].tolist(),
            "dimensions_per_feature": float(dimensions_per_feature(W)[0]),
            "dense_overlap_of_top_two": float(feature_gram(W)[0, 0, 1])}


def toy_weights(ctx, name: str, model) -> torch.Tensor:
    """(1, features, hidden): the engine's layout of a toy model's W (mechinterp.superposition.
    toy_models), from a `W` of the paper's shape (n_hidden, n_features), h = W x, or the engine's
    own (instances, n_features, n_hidden), whose first instance is drawn."""
    from figures_src.runner.context import FigureInputError
    W = getattr(model, "W", None)
    if isinstance(W, torch.Tensor) and W.dim() in (2, 3):
        W = W.detach().float().cpu()
        return W.T[None] if W.dim() == 2 else W[:1]
    found = f"a `W` of shape {tuple(W.shape)}" if isinstance(W, torch.Tensor) else "no attribute `W`"
    raise FigureInputError(
        f"figure {ctx.figure_id!r} draws model {name!r} as a toy model of superposition (Elhage et al. "
        "2022: h = W x, x' = ReLU(WᵀW x + b)), which needs a parameter `W` of shape (n_hidden, "
        "n_features), the paper's m x n matrix (or (instances, n_features, n_hidden) as "
        f"mechinterp.superposition.toy_models.ToyModel keeps it); {name!r} has {found}: give its class "
        f"that `W`, or remove {name!r} from \"models\" in FIGURES[{ctx.figure_id!r}] in {ctx.script} "
        "(with none declared the figure trains the paper's 5-feature models itself)")


def takes_no_model(ctx, trains: str) -> None:
    """A sweep figure trains its own toy models: a declared model would be ignored, so say so."""
    from figures_src.runner.context import FigureInputError
    if ctx.declared_models:
        raise FigureInputError(
            f"figure {ctx.figure_id!r} trains its own toy models ({trains}) and takes no model: remove "
            f"{', '.join(map(repr, ctx.declared_models))} from \"models\" in FIGURES[{ctx.figure_id!r}] "
            f"in {ctx.script} (leave it []); to draw your own toy model's WᵀW and feature vectors, "
            "declare it for superposition/intro-geometry")


def make_phase_diagram(ctx):
    takes_no_model(ctx, "n=2 features in m=1 dimension, over a grid of feature density and importance")
    grid = ctx.params["grid"]
    started = time.perf_counter()
    diagram = phase_diagram(grid, grid, settings=TrainSettings(**ctx.params["train"], seed=ctx.seed),
                            device=ctx.device)
    seconds = time.perf_counter() - started
    fig, ax = plt.subplots(figsize=(9, 5.6))
    ax.pcolormesh(diagram.densities, diagram.relative_importance, diagram.phase,
                  cmap=ListedColormap(PHASE_COLOURS), vmin=-0.5, vmax=2.5, shading="nearest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("feature density 1 - S")
    ax.set_ylabel("importance of the extra feature")
    handles = [Patch(color=c, label=name) for c, name in zip(PHASE_COLOURS, PHASE_NAMES)]
    legend_outside(ax, handles=handles)
    ax.set_title("Two features, one neuron: which arrangement wins")
    ctx.save(fig)
    counts = {name: int((diagram.phase == index).sum()) for index, name in enumerate(PHASE_NAMES)}
    return {"grid": grid, "models_trained": grid * grid * ctx.params["train"]["replicas"],
            "settings": ctx.params["train"], "wall_seconds": seconds, "device": str(ctx.device),
            "phase_counts": counts, "densities": diagram.densities.tolist(),
            "relative_importance": diagram.relative_importance.tolist(),
            "phase": diagram.phase.tolist()}


def make_dims_per_feature(ctx):
    takes_no_model(ctx, "one per feature density, each with the params' n_features and n_hidden")
    p = ctx.params
    result = uniform_importance_geometry(p["n_features"], p["n_hidden"], p["points"],
                                         p["max_inverse_density"],
                                         settings=TrainSettings(**p["train"], seed=ctx.seed),
                                         device=ctx.device)
    inverse_density = (1.0 / result.feature_probability[:, 0]).numpy()
    dims = dimensions_per_feature(result.W).numpy()
    dimensionality = feature_dimensionality(result.W).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax in (left, right):
        for label, value in STICKY_FRACTIONS.items():
            ax.axhline(value, color="#999999", linewidth=1, linestyle="--", zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel("1 / (1 - S)")
    for label, value in STICKY_FRACTIONS.items():
        alignment = {"2/5": "bottom", "3/8": "top"}.get(label, "center")
        right.text(1.01, value, label, va=alignment, fontsize=13, color="#555555",
                   transform=right.get_yaxis_transform())
    left.plot(inverse_density, dims, marker="o", color="#0072B2")
    left.set_ylabel("dimensions per feature")
    left.set_title(r"$m\,/\,\|W\|_F^2$")
    jitter = np.random.default_rng(0).uniform(0.94, 1.06, dimensionality.shape)
    right.scatter(inverse_density[:, None] * jitter, dimensionality, s=8, color="#000000", alpha=0.4)
    right.set_title(r"each feature's $D_i$")
    left.set_ylim(0, 1.08)
    ctx.save(fig)
    plateau = [float(d) for d, x in zip(dims, inverse_density) if abs(d - 0.5) < 0.03]
    return {"n_features": p["n_features"], "n_hidden": p["n_hidden"], "settings": p["train"],
            "inverse_density": inverse_density.tolist(), "dimensions_per_feature": dims.tolist(),
            "points_on_one_half_plateau": len(plateau),
            "feature_dimensionality": dimensionality.round(4).tolist()}


# --- polysemantic neurons and sparse autoencoders on the digits MLP ------------------------------

def sae_model(ctx):
    """(name, model, layer, train, test): the figure's declared model (the digits MLP here; put your
    own zoo model in its FIGURES entry), the layer its params name (ctx.layer), and the data the SAE
    learns from (its zoo dataset's train split) and is judged on (test split)."""
    name = ctx.declared_models[0]
    model = ctx.model(name)
    return name, model, ctx.layer(model), ctx.dataset(name, "train"), ctx.dataset(name, "test")


def fit_sae(sae, model, layer: str, images, steps: int, seed: int):
    """Train on activations streamed VECTORS_PER_BATCH vectors at a time (a conv layer gives one
    vector per position, so fewer images a batch); ReLU SAEs resample dead latents."""
    positions = len(layer_vectors(model, layer, images[:1]))
    stream = activation_stream(model, layer, images, images_per_batch=max(1, VECTORS_PER_BATCH // positions),
                               seed=seed)
    return train_sae(sae, stream, steps=steps, lr=3e-3, resample_every=max(steps // 6, 1))


def sae_measurements(sae, model, layer: str, test) -> dict:
    """Reconstruction metrics on the test images' activations, and accuracy with the SAE spliced in."""
    metrics = evaluate_sae(sae, layer_vectors(model, layer, test.images))
    clean, spliced = accuracy_with_sae(model, layer, sae, test.images, test.labels)
    return {**metrics, "clean_accuracy": clean, "spliced_accuracy": spliced}


def draw_top_images(axes_row, data, indices, label: str) -> None:
    """One row of top-activating images, each titled with its class, the row labelled on the left."""
    for ax, index in zip(axes_row, indices):
        show_image(ax, data.images[index], grey="gray_r")
        ax.set_title(data.class_names[int(data.labels[index])], fontsize=12, pad=3)
    axes_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=14)


def render_settings(params) -> RenderSettings:
    """params featvis_render: "naive" (plain pixels at featvis_lr) or "fourier" (the defaults)."""
    return RenderSettings() if params["featvis_render"] == "fourier" else RenderSettings.naive(params["featvis_lr"])


def visualise_directions(ctx, model, layer: str, directions: torch.Tensor):
    """Feature visualisation of directions in the layer (a neuron is a one-hot direction).

    8x8 digits are too small for Fourier images and transforms: plain pixels, the direction's
    cosine-weighted projection, and an L2 pull (params featvis_l2) towards a blank (zero) image so
    only ink that helps survives. A conv layer's units are weaker per pixel: there the pull blanks
    the image, and featvis_l2 0 with featvis_render "fourier" (the default RenderSettings: Fourier
    image, transforms; featvis_lr is then unused) shows them. A flat image's warning names the
    figure and these params."""
    import warnings
    p = ctx.params
    goal = (featvis_objectives.direction(layer, directions, cosine_power=1.0)
            - p["featvis_l2"] * featvis_objectives.l2(constant=0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = render(model, goal, steps=p["featvis_steps"], settings=render_settings(p),
                        seed=ctx.seed, progress=False).images
    for warning in caught:
        warnings.warn(f"figure {ctx.figure_id!r}, its optimised panels: {warning.message} (here: lower "
                      f"\"featvis_l2\" (now {p['featvis_l2']}) or set \"featvis_render\" to \"fourier\" "
                      f"in FIGURES[{ctx.figure_id!r}][\"params\"] in {ctx.script})",
                      warning.category, stacklevel=2)
    return images


def draw_units_with_top_images(rows, optimised, test, shown, title):
    """One row per (kind, unit, purity report): its top test images, then its optimised image."""
    fig, axes = plt.subplots(len(rows), shown + 1, figsize=(10.5, 5.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * shown + [1.25]})
    for axes_row, (kind, unit, report), image in zip(axes, rows, optimised):
        draw_top_images(axes_row[:-1], test, report.top_indices[unit].tolist(),
                        f"{kind} {unit}\npurity {float(report.purity[unit]):.2f}")
        show_image(axes_row[-1], image, grey="gray_r")
        for spine in axes_row[-1].spines.values():
            spine.set_edgecolor("#D55E00")
            spine.set_visible(True)
    axes[0, -1].set_title("optimised", fontsize=12, pad=3, color="#D55E00")
    fig.suptitle(title, fontsize=16)
    return fig


def make_polysemantic_vs_sae(ctx):
    p = ctx.params
    name, model, layer, train, test = sae_model(ctx)
    ctx.require_images(model, "each unit's top test images and an optimised input beside them",
                       "for a model of vectors superposition/sae-metrics gives the same SAE's numbers")
    width = layer_vectors(model, layer, test.images[:2]).shape[1]
    sae = ReluSAE(width, p["latents"], l1_coefficient=p["l1"], seed=ctx.seed).to(ctx.device)
    log = fit_sae(sae, model, layer, train.images, p["steps"], ctx.seed)
    neurons = class_purity(unit_scores(model, layer, test.images), test.labels, p["top_k"],
                           len(test.class_names))
    latents = class_purity(unit_scores(model, layer, test.images, vector_map=sae.encode),
                           test.labels, p["top_k"], len(test.class_names))
    measured = sae_measurements(sae, model, layer, test)
    candidates = find_polysemantic(neurons, max_purity=0.5)
    alive = torch.nonzero(neurons.alive).flatten().tolist()
    neuron = candidates[0] if candidates else min(alive, key=lambda u: float(neurons.purity[u]))
    top_inputs = test.images[neurons.top_indices[neuron]]
    with torch.no_grad():
        top_latents = sae.encode(layer_vectors(model, layer, top_inputs)).cpu()
    contributions = contributions_to_unit(top_latents, sae.W_dec.detach().cpu(), neuron,
                                          float(sae.input_scale))
    features = features_behind_unit(contributions, latents, count=p["features"])
    rows = [("neuron", neuron, neurons)] + [("SAE feature", f, latents) for f in features]
    directions = torch.cat([torch.eye(sae.W_dec.shape[1])[[neuron]], sae.W_dec.detach().cpu()[features]])
    optimised = visualise_directions(ctx, model, layer, directions.to(ctx.device))
    ctx.save(draw_units_with_top_images(rows, optimised, test, p["shown"],
                                        f"{name}, layer {layer}: the test images that excite each unit most"))

    def describe(report, unit):
        counts = report.class_counts[unit]
        return {"unit": unit, "purity": float(report.purity[unit]), "entropy": float(report.entropy[unit]),
                "top_classes": {test.class_names[c]: int(counts[c]) for c in torch.nonzero(counts).flatten()}}
    return {"layer": layer, "model": name, "top_k": p["top_k"],
            "neuron": describe(neurons, neuron), "features": [describe(latents, f) for f in features],
            "optimised_spread": optimised.flatten(1).std(1).tolist(),   # ~0: a blank panel
            "polysemantic_neurons": len(candidates), "neurons": summary(neurons),
            "sae_latents": summary(latents), "sae": {"kind": "relu-l1", "l1": p["l1"], "latents": p["latents"],
                                                     "steps": p["steps"], **measured,
                                                     "vectors_per_second": log.vectors_per_second}}


def make_sae_metrics(ctx):
    p = ctx.params
    model_name, model, layer, train, test = sae_model(ctx)
    runs = []
    width = layer_vectors(model, layer, test.images[:2]).shape[1]
    settings = [("topk", k, TopKSAE(width, p["latents"], k=k, dead_after=20_000, seed=ctx.seed))
                for k in p["ks"]]
    settings += [("relu-l1", l1, ReluSAE(width, p["latents"], l1_coefficient=l1, seed=ctx.seed))
                 for l1 in p["l1"]]
    for kind, setting, sae in settings:
        log = fit_sae(sae.to(ctx.device), model, layer, train.images, p["steps"], ctx.seed)
        runs.append({"kind": kind, "setting": setting, **sae_measurements(sae, model, layer, test),
                     "vectors_per_second": log.vectors_per_second, "resampled": log.resampled})
    clean = runs[0]["clean_accuracy"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.4), layout="constrained")
    for kind, colour, name in (("topk", "#0072B2", "TopK, k ="), ("relu-l1", "#D55E00", "ReLU + L1, λ =")):
        chosen = [r for r in runs if r["kind"] == kind]
        l0s = [r["l0"] for r in chosen]
        left.plot(l0s, [r["explained_variance"] for r in chosen], marker="o", color=colour, label=name.split(",")[0])
        right.plot(l0s, [r["spliced_accuracy"] for r in chosen], marker="o", color=colour)
        for run in chosen:
            left.annotate(f"{run['setting']:g}", (run["l0"], run["explained_variance"]), fontsize=12,
                          textcoords="offset points", xytext=(4, -14), color=colour)
    right.axhline(clean, color="#000000", linestyle="--", linewidth=1.5, label="without SAE")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("L0: active latents per input")
    left.set_ylabel("explained variance")
    right.set_ylabel("accuracy, layer replaced by SAE")
    left.legend(title="k or λ beside each point", loc="lower right")
    right.legend(loc="lower right")
    ctx.save(fig)
    quoted = next(r for r in runs if r["kind"] == "topk" and r["setting"] == p["quoted_k"])
    return {"model": model_name, "layer": layer, "latents": p["latents"], "steps": p["steps"],
            "clean_accuracy": clean, "runs": runs, "quoted_topk": quoted,
            "best_spliced_accuracy": max(r["spliced_accuracy"] for r in runs)}
