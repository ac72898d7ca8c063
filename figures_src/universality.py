"""Universality and representations: do different models learn the same things, and what is in them?

universality/cka-maps               linear CKA between every pair of layers: two seeds of one
                                    architecture, and across architectures (wide, deep)
universality/layer-correspondence   Kornblith et al.'s test: is the most similar layer of the other
                                    model the one at the same depth? accuracy per measure
universality/unit-matching          best one-to-one unit matches across seeds (correlation,
                                    Hungarian assignment) against a shuffled-image baseline
universality/matched-units          matched unit pairs shown by their top dataset examples
universality/first-layer-filters    conv1 of every zoo CNN and the digits MLP's first layer, next to
                                    ICA and sparse-coding filters of natural-image patches
universality/curve-detectors        the curve-detector family the featvis tuning-curve finder finds in
                                    every zoo CNN, as radial tuning curves
universality/probes                 linear-probe accuracy per layer against chance, a shuffled-label
                                    control and the same architecture with random weights
universality/tcav                   concepts x layers: CAV accuracy and significant TCAV scores
universality/embedding              a layer's activations in 2-D (PCA, ICA, kernel PCA, t-SNE) by class
universality/geometry               intrinsic dimension and k-means purity of every layer
universality/interpolation          the class along the straight line between two inputs
universality/adversarial            attack success against epsilon; the SAE features an attack hijacks
universality/adversarial-path       a targeted attack walking an input from one class to another
"""
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch

from mechinterp.device import cpu_threads as one_cpu_thread

FIGURES = {
    "universality/cka-maps": {
        "make": "make_cka_maps",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"],
        "params": {"quick": {"images": 300}, "full": {"images": 1000}},
        "outputs": ["png"],
    },
    "universality/layer-correspondence": {
        "make": "make_layer_correspondence",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"],
        "params": {"quick": {"images": 300}, "full": {"images": 1000}},
        "outputs": ["png"],
    },
    "universality/unit-matching": {
        "make": "make_unit_matching",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1"],
        "params": {"quick": {"images": 300}, "full": {"images": 2000}},
        "outputs": ["png"],
    },
    "universality/matched-units": {
        "make": "make_matched_units",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1"],
        "params": {"quick": {"images": 400, "layer": "relu2", "pairs": 4, "examples": 5},
                   "full": {"images": 2000, "layer": "relu2", "pairs": 4, "examples": 5}},
        "outputs": ["png"],
    },
    "universality/first-layer-filters": {
        "make": "make_first_layer_filters",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep",
                   "digits-mlp"],
        "params": {"quick": {"patches": 3000, "components": 16, "shown": 16},
                   "full": {"patches": 20000, "components": 32, "shown": 16}},
        "outputs": ["png"],
    },
    "universality/curve-detectors": {
        "make": "make_curve_detectors",
        "models": ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"],
        "params": {"orientations": 36},
        "outputs": ["png"],
    },
    "universality/probes": {
        "make": "make_probes",
        "models": ["shapes-cnn-a", "shapes-cnn-deep"],
        "params": {"quick": {"images": 400}, "full": {"images": 2000}},
        "outputs": ["png"],
    },
    "universality/tcav": {
        "make": "make_tcav",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"target": "circle", "examples": 40, "random_sets": 5},
                   "full": {"target": "circle", "examples": 100, "random_sets": 20}},
        "outputs": ["png"],
    },
    "universality/embedding": {
        "make": "make_embedding",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 300, "layer": "relu3"}, "full": {"images": 1500, "layer": "relu3"}},
        "outputs": ["png"],
    },
    "universality/geometry": {
        "make": "make_geometry",
        "models": ["shapes-cnn-a", "shapes-cnn-wide", "shapes-cnn-deep"],
        "params": {"quick": {"images": 400}, "full": {"images": 2000}},
        "outputs": ["png"],
    },
    "universality/interpolation": {
        "make": "make_interpolation",
        "models": ["shapes-cnn-a"],
        "params": {"start": "line", "end": "circle", "steps": 9, "dense_steps": 101, "layer": "relu3"},
        "outputs": ["png"],
    },
    "universality/adversarial": {
        "make": "make_adversarial",
        "models": ["shapes-cnn-a"],
        "params": {"quick": {"images": 120, "sae_images": 2000, "sae_steps": 300, "steps": 5,
                             "linf": [0, 0.005, 0.01, 0.02, 0.04],
                             "l2": [0, 0.25, 0.5, 1.0, 2.0], "hijack_epsilon": 0.01,
                             "reference_linf": 0.02, "reference_l2": 0.5},
                   "full": {"images": 500, "sae_images": 8000, "sae_steps": 2000, "steps": 10,
                            "linf": [0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04],
                            "l2": [0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0], "hijack_epsilon": 0.01,
                            "reference_linf": 0.02, "reference_l2": 0.5}},
        "outputs": ["png"],
    },
    "universality/adversarial-path": {
        "make": "make_adversarial_path",
        "models": ["shapes-cnn-a"],
        "params": {"start": "line", "target": "circle", "epsilon": 3.0, "steps": 40, "shown": 7},
        "outputs": ["png"],
    },
}

CNNS = ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"]
SHORT = {"shapes-cnn-a": "A", "shapes-cnn-a-seed1": "A seed 1", "shapes-cnn-wide": "Wide",
         "shapes-cnn-deep": "Deep", "digits-mlp": "Digits MLP"}
MEASURE_NAMES = {"linear_cka": "linear CKA", "debiased_cka": "debiased CKA", "rbf_cka": "RBF CKA",
                 "svcca": "SVCCA", "mutual_knn": "mutual k-NN"}


# --- shared helpers --------------------------------------------------------------------------

def shapes_split(split, count):
    from mechinterp.data import load_dataset
    return load_dataset("shapes", split, count=count)


def layers_of(model):
    from mechinterp.activations import representation_layers
    return representation_layers(model)


def no_ticks(axis):
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def show_rgb(axis, image_chw):
    image = np.asarray(torch.as_tensor(image_chw).cpu()).transpose(1, 2, 0)
    axis.imshow(image.squeeze() if image.shape[-1] == 1 else image,
                cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1,
                interpolation="nearest")
    no_ticks(axis)


def filter_mosaic(weight, columns, pad=1):
    """Tile filters into one image with white gaps, `columns` filters per row."""
    from mechinterp.universality.filters import filters_as_images
    images = filters_as_images(weight)
    count, height, width, _ = images.shape
    rows = int(np.ceil(count / columns))
    mosaic = np.ones((rows * (height + pad) - pad, columns * (width + pad) - pad, 3))
    for index, image in enumerate(images):
        top, left = (index // columns) * (height + pad), (index % columns) * (width + pad)
        mosaic[top:top + height, left:left + width] = image
    return mosaic


def heat_map(axis, matrix, rows, columns, vmin=0.0, vmax=1.0, cmap="viridis", digits=2):
    image = axis.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    for (i, j), value in np.ndenumerate(np.asarray(matrix, dtype=float)):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=12,
                      color=text_colour(image, value))
    return image


def text_colour(image, value):
    """White on dark cells, black on light ones (dark grey on empty NaN cells)."""
    if not np.isfinite(value):
        return "#444444"
    red, green, blue, _ = image.cmap(image.norm(value))
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"


def randomly_initialised(model, seed=0):
    """The same architecture with fresh random weights: what structure the weights alone add."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return fresh.eval()


# --- similarity of representations -----------------------------------------------------------

def make_cka_maps(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import layer_features
        from mechinterp.universality.similarity import as_layers, similarity_matrix
        images = shapes_split("test", ctx.params["images"]).images
        models = {name: ctx.model(name) for name in CNNS}
        features = {name: as_layers(layer_features(model, images, layers_of(model)))   # Grams once
                    for name, model in models.items()}
        pairs = [("shapes-cnn-a", "shapes-cnn-a-seed1"), ("shapes-cnn-a", "shapes-cnn-wide"),
                 ("shapes-cnn-a", "shapes-cnn-deep")]
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), gridspec_kw={"width_ratios": [4, 3, 6]})
        numbers = {"images": len(images), "pairs": {}}
        for axis, (name_a, name_b) in zip(axes, pairs):
            matrix = similarity_matrix(features[name_a], features[name_b], "linear_cka").numpy()
            heat_map(axis, matrix.T, list(features[name_b]), list(features[name_a]))
            axis.set_xlabel(SHORT[name_a])
            axis.set_ylabel(SHORT[name_b])
            axis.set_title(f"{SHORT[name_a]} vs {SHORT[name_b]}")
            numbers["pairs"][f"{SHORT[name_a]} vs {SHORT[name_b]}"] = {
                "layers_a": list(features[name_a]), "layers_b": list(features[name_b]),
                "linear_cka": matrix}
        within = numbers["pairs"]["A vs A seed 1"]["linear_cka"]
        numbers["seed_diagonal_mean"] = float(np.diag(within).mean())
        numbers["seed_off_diagonal_mean"] = float(within[~np.eye(len(within), dtype=bool)].mean())
        fig.suptitle("Linear CKA between layers: two seeds, then other architectures")
        fig.tight_layout()
        ctx.save(fig)
        return numbers


def make_layer_correspondence(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import layer_features
        from mechinterp.universality.similarity import as_layers
        images = shapes_split("test", ctx.params["images"]).images
        # Kornblith et al.'s test proper: two seeds of one architecture, every module's output
        # (conv, ReLU, pooling), so neighbouring layers compete with the right one.
        models = {name: ctx.model(name) for name in CNNS}
        seed_features = [layer_features(models[name], images, every_module(models[name]))
                         for name in ("shapes-cnn-a", "shapes-cnn-a-seed1")]
        # Across architectures there is no true partner layer; relative depth is the guess tested.
        seed_features = [as_layers(features) for features in seed_features]   # Grams once
        features = {name: {layer: seeds[layer] for layer in layers_of(models[name])}
                    for name, seeds in zip(("shapes-cnn-a", "shapes-cnn-a-seed1"), seed_features)}
        features.update({name: as_layers(layer_features(models[name], images, layers_of(models[name])))
                         for name in ("shapes-cnn-wide", "shapes-cnn-deep")})
        cross_pairs = [(a, b) for i, a in enumerate(CNNS) for b in CNNS[i + 1:]
                       if {a, b} != {"shapes-cnn-a", "shapes-cnn-a-seed1"}]
        accuracy = {
            "seeds_every_module": correspondence_both_ways([seed_features]),
            "across_architectures": correspondence_both_ways(
                [(features[a], features[b]) for a, b in cross_pairs])}
        groups = {"seeds_every_module": "two seeds, every module",
                  "across_architectures": "across architectures, relative depth"}
        fig, axis = plt.subplots(figsize=(10, 5.6))
        positions = np.arange(len(MEASURE_NAMES))
        for offset, (group, values) in zip((-0.2, 0.2), accuracy.items()):
            axis.bar(positions + offset, [values[m] for m in MEASURE_NAMES], width=0.4,
                     label=groups[group])
        axis.set_xticks(positions, list(MEASURE_NAMES.values()))
        axis.set_ylim(0, 1.3)
        axis.set_yticks(np.linspace(0, 1, 6))
        axis.set_ylabel("layers whose best match is right")
        axis.legend(loc="upper center", ncol=2, fontsize=13)
        axis.set_title("Is the most similar layer of the other model the corresponding one?")
        ctx.save(fig)
        return {"images": len(images), "accuracy": accuracy,
                "penultimate_mutual_knn": penultimate_alignment(models, images, ctx.seed),
                "seed_layers": list(seed_features[0]),
                "cross_pairs": [f"{SHORT[a]} vs {SHORT[b]}" for a, b in cross_pairs]}


def penultimate_alignment(models, images, seed):
    """Mutual k-NN alignment (Huh et al.'s Platonic-representation measure) of what each
    classifier reads (last ReLU layer, max over space) for every pair of models, trained and with
    random weights: how much of the agreement comes from training rather than from the pixels."""
    from mechinterp.activations import layer_features
    from mechinterp.universality.similarity import mutual_knn_alignment

    def penultimate(model):
        layer = model.feature_layers[-1]
        return layer_features(model, images, [layer], pool="max")[layer]
    trained = {name: penultimate(model) for name, model in models.items()}
    untrained = {name: penultimate(randomly_initialised(model, seed + index))   # distinct draws
                 for index, (name, model) in enumerate(models.items())}
    names = list(models)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    result = {f"{SHORT[a]} vs {SHORT[b]}": {
        "trained": mutual_knn_alignment(trained[a], trained[b]),
        "random_weights": mutual_knn_alignment(untrained[a], untrained[b])} for a, b in pairs}
    result["mean_trained"] = float(np.mean([v["trained"] for v in result.values()]))
    result["mean_random_weights"] = float(np.mean([v["random_weights"] for k, v in result.items()
                                                   if k != "mean_trained"]))
    return result


def every_module(model):
    """Every top-level module whose output is a representation (all but the flatten)."""
    return [name for name, module in model.named_children() if not isinstance(module, torch.nn.Flatten)]


def correspondence_both_ways(feature_pairs):
    """{measure: Kornblith et al.'s accuracy} over pairs of models, each layer of either model
    asking whether its most similar layer in the other is the one at the same (relative) depth."""
    from mechinterp.universality.matching import layer_correspondence_accuracy
    from mechinterp.universality.similarity import similarity_matrices
    hits = {measure: [] for measure in MEASURE_NAMES}
    for features_a, features_b in feature_pairs:
        for measure, matrix in similarity_matrices(features_a, features_b, list(MEASURE_NAMES)).items():
            hits[measure].append((layer_correspondence_accuracy(matrix), matrix.shape[0]))
            hits[measure].append((layer_correspondence_accuracy(matrix.T), matrix.shape[1]))
    return {measure: weighted_mean(values) for measure, values in hits.items()}


def weighted_mean(values_and_weights):
    values, weights = zip(*values_and_weights)
    return float(np.average(values, weights=weights))


# --- units across models -----------------------------------------------------------------------

def capture_maps(model, images, layers):
    """{layer: (N, C, H, W)} raw activations (conv maps kept spatial)."""
    from mechinterp.hooks import capture
    parts = {layer: [] for layer in layers}
    device = next(model.parameters()).device
    for start in range(0, len(images), 256):
        with torch.no_grad(), capture(model, layers) as acts:
            model(images[start:start + 256].to(device))
        for layer in layers:
            parts[layer].append(acts[layer].cpu())
    return {layer: torch.cat(chunks) for layer, chunks in parts.items()}


def make_unit_matching(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.universality.matching import match_units, shuffled_matching, unit_correlations
        images = shapes_split("test", ctx.params["images"]).images
        model_a, model_b = ctx.model("shapes-cnn-a"), ctx.model("shapes-cnn-a-seed1")
        layers = list(model_a.feature_layers)
        maps_a, maps_b = capture_maps(model_a, images, layers), capture_maps(model_b, images, layers)
        fig, axes = plt.subplots(1, len(layers), figsize=(15, 5), sharey=True)
        numbers = {"images": len(images), "layers": {}}
        bins = np.linspace(-0.2, 1.0, 25)
        for axis, layer in zip(axes, layers):
            matched = match_units(unit_correlations(maps_a[layer], maps_b[layer]))
            baseline = shuffled_matching(maps_a[layer], maps_b[layer], seed=ctx.seed)
            axis.hist(baseline.correlations, bins=bins, alpha=0.6, color="#999999", label="images shuffled")
            axis.hist(matched.correlations, bins=bins, alpha=0.8, label="matched units")
            axis.set_title(f"{layer} ({len(matched.pairs)} units)")
            axis.set_xlabel("correlation of matched pair")
            numbers["layers"][layer] = {
                "matched_mean": matched.mean_correlation, "shuffled_mean": baseline.mean_correlation,
                "matched_median": float(np.median(matched.correlations)),
                "fraction_above_0.5": float((matched.correlations > 0.5).mean()),
                "shuffled_max": float(baseline.correlations.max())}
        axes[0].set_ylabel("unit pairs")
        axes[0].legend(loc="upper left")
        fig.suptitle("Units of seed 0 matched one-to-one to units of seed 1")
        fig.tight_layout()
        ctx.save(fig)
        return numbers


def make_matched_units(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.featvis.dataset_examples import (receptive_field, receptive_field_crops,
                                                         top_activating_examples)
        from mechinterp.universality.matching import match_units, unit_correlations
        data = shapes_split("test", ctx.params["images"])
        layer, pairs, examples = ctx.params["layer"], ctx.params["pairs"], ctx.params["examples"]
        models = [ctx.model("shapes-cnn-a"), ctx.model("shapes-cnn-a-seed1")]
        maps = [capture_maps(model, data.images, [layer])[layer] for model in models]
        matching = match_units(unit_correlations(*maps))
        # Dataset examples as the crops each unit sees at its strongest position (featvis).
        tops = [top_activating_examples(model, layer, data.images, k=20) for model in models]
        fields = [receptive_field(model, layer, data.images.shape[1:]) for model in models]
        fig, axes = plt.subplots(pairs, 2 * examples + 1, figsize=(12, 1.45 * pairs + 1.0),
                                 gridspec_kw={"width_ratios": [1] * examples + [0.5] + [1] * examples})
        shown = []
        for row, (units, correlation) in enumerate(zip(matching.pairs[:pairs], matching.correlations)):
            for side, (unit, top, field) in enumerate(zip(units, tops, fields)):
                crops = receptive_field_crops(data.images, top, field, unit)[:examples]
                for column, crop in enumerate(crops):
                    show_rgb(axes[row, side * (examples + 1) + column], crop)
            axes[row, examples].axis("off")
            axes[row, examples].text(0.5, 0.5, f"r={correlation:.2f}", ha="center", va="center",
                                     fontsize=13, transform=axes[row, examples].transAxes)
            axes[row, 0].set_ylabel(f"#{units[0]}", rotation=0, ha="right", va="center")
            axes[row, -1].yaxis.set_label_position("right")
            axes[row, -1].set_ylabel(f"#{units[1]}", rotation=0, ha="left", va="center")
            top_sets = [set(top.indices[unit].tolist()) for unit, top in zip(units, tops)]
            shown.append({"unit_a": units[0], "unit_b": units[1], "correlation": float(correlation),
                          "shared_top20_images": len(top_sets[0] & top_sets[1]) / 20})
        axes[0, examples // 2].set_title(f"seed 0 · {layer}")
        axes[0, examples + 1 + examples // 2].set_title(f"seed 1 · {layer}")
        ctx.save(fig)
        return {"layer": layer, "images": len(data.images), "pairs": shown,
                "receptive_field": list(fields[0].size),
                "mean_shared_top20_images": float(np.mean([p["shared_top20_images"] for p in shown]))}


# --- first-layer filters ----------------------------------------------------------------------

def strongest_first(weight):
    """Filters sorted by norm, largest first: the ones the layer relies on most lead."""
    norms = np.linalg.norm(weight.reshape(len(weight), -1), axis=1)
    return weight[np.argsort(-norms)]


def make_first_layer_filters(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.data import natural_patches
        from mechinterp.universality.filters import (best_match_similarity, first_layer_filters,
                                                      filter_orientedness, ica_filters,
                                                      sparse_coding_filters)
        count, components, shown = ctx.params["patches"], ctx.params["components"], ctx.params["shown"]
        learned = {name: first_layer_filters(ctx.model(name)) for name in CNNS + ["digits-mlp"]}
        rng = np.random.default_rng(ctx.seed)
        sizes = sorted({weight.shape[-1] for name, weight in learned.items() if name != "digits-mlp"})
        ica_by_size = {size: ica_filters(natural_patches(size, count, seed=ctx.seed), components, ctx.seed)
                       for size in sizes}
        display_size = max(sizes)
        sparse = sparse_coding_filters(natural_patches(display_size, count, seed=ctx.seed), components,
                                       seed=ctx.seed)
        panels = {**{SHORT[name]: strongest_first(weight) for name, weight in learned.items()},
                  "ICA of photo patches": ica_by_size[display_size],
                  "sparse coding of patches": sparse,
                  "random (baseline)": rng.standard_normal((shown, 3, display_size, display_size))}
        numbers = {"orientation_selectivity": {}, "best_match_with_ica": {}, "random_best_match_with_ica": {}}
        task_free = {"ica": ica_by_size[display_size], "sparse_coding": sparse}
        for name, weight in {**learned, **task_free}.items():
            numbers["orientation_selectivity"][name] = float(filter_orientedness(weight).mean())
        for name, weight in learned.items():
            if name == "digits-mlp":
                continue
            reference = ica_by_size[weight.shape[-1]]
            numbers["best_match_with_ica"][name] = float(
                best_match_similarity(weight, reference).mean())
            random_filters = rng.standard_normal(weight.shape)
            numbers["random_best_match_with_ica"][name] = float(
                best_match_similarity(random_filters, reference).mean())
        numbers["random_orientation_selectivity"] = float(
            filter_orientedness(rng.standard_normal((256, 3, display_size, display_size))).mean())
        fig, axes = plt.subplots(2, 4, figsize=(14, 7.2))
        for axis, (title, weight) in zip(axes.ravel(), panels.items()):
            axis.imshow(filter_mosaic(weight[:shown], columns=4), interpolation="nearest")
            size = "×".join(str(s) for s in weight.shape[-2:])
            axis.set_title(f"{title} ({size})", fontsize=14)
            no_ticks(axis)
        fig.suptitle("First layers of every zoo model, and filters learned from photographs with no task")
        fig.tight_layout()
        ctx.save(fig)
        numbers["patches"] = count
        return numbers


# --- curve detectors across the zoo -------------------------------------------------------------

def make_curve_detectors(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.featvis.tuning import find_detector_family
        numbers = {"models": {}, "chosen": {}}
        fig, axes = plt.subplots(1, len(CNNS), figsize=(16, 4.9), subplot_kw={"projection": "polar"})
        for axis, name in zip(axes, CNNS):
            model = ctx.model(name)
            families = {layer: find_detector_family(model, layer, ctx.params["orientations"])
                        for layer in model.feature_layers}
            numbers["models"][SHORT[name]] = {
                layer: {"curve": family.kinds.count("curve"), "edge": family.kinds.count("edge"),
                        "curve_coverage": family.coverage["curve"],
                        "edge_coverage": family.coverage["edge"]}
                for layer, family in families.items()}
            # Each model's curve family lives at its own depth: show the layer with the most.
            layer = max(families, key=lambda l: curve_family_size(families[l]))
            numbers["chosen"][SHORT[name]] = {"layer": layer, **numbers["models"][SHORT[name]][layer]}
            draw_tuning_petals(axis, families[layer])
            count = families[layer].kinds.count("curve")
            axis.set_title(f"{SHORT[name]} · {layer}\n{count} curve detectors", fontsize=15, pad=14)
        fig.suptitle("The curve-detector family in every CNN of the zoo", y=1.04)
        fig.subplots_adjust(wspace=0.45)
        ctx.save(fig)
        chosen = numbers["chosen"].values()
        numbers["mean_curve_coverage"] = float(np.mean([c["curve_coverage"] for c in chosen]))
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


# --- probes ------------------------------------------------------------------------------------

def make_probes(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import as_features
        from mechinterp.universality.probes import probe, probe_layers
        data = shapes_split("test", ctx.params["images"])
        results, numbers = {}, {"images": len(data.images), "models": {}}
        pixels = probe(as_features(data.images, pool=8), data.labels, seed=ctx.seed)  # 8x8 colour
        for name in ("shapes-cnn-a", "shapes-cnn-deep"):
            model = ctx.model(name)
            layers = layers_of(model)
            trained = probe_layers(model, data.images, data.labels, layers, seed=ctx.seed)
            untrained = probe_layers(randomly_initialised(model, ctx.seed), data.images, data.labels,
                                     layers, seed=ctx.seed)
            results[name] = (layers, trained, untrained)
            numbers["models"][SHORT[name]] = {
                layer: {**trained[layer].as_dict(), "random_weights_accuracy": untrained[layer].accuracy}
                for layer in layers}
        numbers["pixels"] = pixels.as_dict()
        numbers["chance"] = pixels.chance
        # Drawn for model A at half-slide size (it shares a slide with TCAV); Deep is in the JSON.
        layers, trained, untrained = results["shapes-cnn-a"]
        steps = ["pixels"] + layers
        fig, axis = plt.subplots(figsize=(7.5, 5.6))
        axis.plot(steps, [pixels.accuracy] + [trained[l].accuracy for l in layers], "o-",
                  label="trained model")
        axis.plot(steps, [pixels.accuracy] + [untrained[l].accuracy for l in layers], "s--",
                  label="random weights")
        axis.plot(steps, [pixels.control_accuracy] + [trained[l].control_accuracy for l in layers],
                  "^:", label="shuffled labels")
        axis.axhline(pixels.chance, color="black", linewidth=1.5, label="chance")
        axis.set_ylim(0, 1.05)
        axis.set_ylabel("probe accuracy (held out)")
        axis.legend(loc="upper left")
        axis.set_title("Linear probes on shapes-cnn-a", fontsize=17)
        ctx.save(fig)
        return numbers


# --- concepts ----------------------------------------------------------------------------------

def gratings(count, rng, size=32):
    """Sinusoidal stripes of random orientation, frequency, phase and colour."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angles, periods = rng.uniform(0, np.pi, count), rng.uniform(4, 10, count)
    phases, colours = rng.uniform(0, 2 * np.pi, count), rng.uniform(0.2, 1.0, (count, 3))
    waves = np.cos(2 * np.pi * (x[None] * np.cos(angles)[:, None, None]
                                + y[None] * np.sin(angles)[:, None, None]) / periods[:, None, None]
                   + phases[:, None, None])
    images = 0.5 + 0.5 * waves[:, None] * colours[:, :, None, None]
    return torch.tensor(images, dtype=torch.float32)


def noise_images(count, rng, size=32):
    return torch.tensor(rng.uniform(0, 1, (count, 3, size, size)), dtype=torch.float32)


def concept_sets(data, count, rng):
    """Concept examples: shape classes the target is not, plus two synthetic textures."""
    by_class = {name: data.images[data.labels == i] for i, name in enumerate(data.class_names)}
    concepts = {name: by_class[name][:count] for name in ("arc", "line", "corner", "square")}
    concepts["stripes"] = gratings(count, rng)
    concepts["noise"] = noise_images(count, rng)
    return concepts


def make_tcav(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.universality.tcav import concept_layer_map
        rng = np.random.default_rng(ctx.seed)
        examples, target = ctx.params["examples"], ctx.params["target"]
        data = shapes_split("train", 4000)
        target_index = data.class_names.index(target)
        others = data[data.labels != target_index]
        concepts = concept_sets(others, examples, rng)
        random_sets = [others.images[rng.choice(len(others), examples, replace=False)]
                       for _ in range(ctx.params["random_sets"])]
        test = shapes_split("test", 1000)
        class_images = test.images[test.labels == target_index][:examples]
        model = ctx.model("shapes-cnn-a")
        layers = list(model.feature_layers)
        table = concept_layer_map(model, layers, concepts, random_sets, class_images, target_index, ctx.seed)
        ig_share = concept_ig_shares(model, layers, table, class_images, target_index)
        names = list(concepts)
        cav_accuracy = np.array([[table[c][l].as_dict()["cav_accuracy"] for l in layers] for c in names])
        scores = np.array([[table[c][l].mean for l in layers] for c in names])
        significant = np.array([[table[c][l].significant() for l in layers] for c in names])
        # Half-slide size (it shares a slide with the probes): colour and big number = TCAV score
        # where significant; small number = CAV accuracy, how linearly present the concept is.
        fig, axis = plt.subplots(figsize=(7.5, 5.6))
        shown = np.where(significant, scores, np.nan)
        image = heat_map(axis, shown, names, layers, cmap="RdBu_r")
        for (i, j), accuracy in np.ndenumerate(cav_accuracy):
            if not significant[i, j]:
                axis.text(j, i - 0.12, "n.s.", ha="center", va="center", fontsize=13, color="#777777")
            axis.text(j, i + 0.3, f"CAV {accuracy:.2f}", ha="center", va="center", fontsize=10,
                      color=text_colour(image, shown[i, j]))
        axis.set_xticks(range(len(layers)), layers, rotation=0, ha="center")
        axis.set_title(f"TCAV for '{target}' (p < 0.05)", fontsize=17)
        ctx.save(fig)
        return {"target": target, "layers": layers, "concepts": names, "random_sets": len(random_sets),
                "ig_share_along_cav": ig_share,
                "cav_accuracy": cav_accuracy, "tcav": scores, "significant": significant,
                "results": {c: {l: table[c][l].as_dict() for l in layers} for c in names}}


def concept_ig_shares(model, layers, table, class_images, class_index):
    """{concept: {layer: mean share of the class logit's layer IG lying along the concept's CAV}}
    (integrated gradients projected on a CAV: concept localisation per layer)."""
    from mechinterp.universality.tcav import path_gradients
    shares = {concept: {} for concept in table}
    for layer in layers:
        change, mean_gradient = path_gradients(model, class_images, layer, class_index, steps=16)
        total = (change * mean_gradient).sum(axis=1)
        for concept, results in table.items():
            direction = results[layer].mean_direction
            along = (change @ direction) * (mean_gradient @ direction)
            shares[concept][layer] = float(np.mean(along / total))
    return shares


# --- geometry ------------------------------------------------------------------------------------

def class_scatter(axis, points, labels, class_names, title):
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        chosen = labels == index
        axis.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colours(index), label=name)
    axis.set_title(title)
    no_ticks(axis)


def make_embedding(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import layer_features
        from mechinterp.universality.geometry import clustering_purity, embed_2d
        data = shapes_split("test", ctx.params["images"])
        layer = ctx.params["layer"]
        features = layer_features(ctx.model("shapes-cnn-a"), data.images, [layer], pool="max")[layer]
        labels = data.labels.numpy()
        fig, axes = plt.subplots(1, 4, figsize=(16, 4.8))
        numbers = {"layer": layer, "images": len(labels), "embedding_purity": {}}
        titles = {"pca": "PCA", "ica": "ICA", "kpca": "kernel PCA", "tsne": "t-SNE"}
        for axis, (method, title) in zip(axes, titles.items()):
            points = embed_2d(features, method, seed=ctx.seed)
            class_scatter(axis, points, labels, data.class_names, title)
            numbers["embedding_purity"][method] = clustering_purity(points, labels, 8, ctx.seed)[0]
        axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2.5, fontsize=12)
        fig.suptitle(f"shapes-cnn-a · {layer} (channel maxima: what the classifier reads), by class")
        fig.tight_layout()
        ctx.save(fig)
        return numbers


def make_geometry(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import layer_features
        from mechinterp.universality.geometry import (clustering_purity, components_for_variance,
                                                       participation_ratio, pca_spectrum,
                                                       twonn_dimension)
        data = shapes_split("test", ctx.params["images"])
        labels = data.labels.numpy()
        numbers = {"images": len(labels), "models": {}}
        fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
        pixel_features = data.images.flatten(1)
        pixel_purity = clustering_purity(pixel_features, labels, 8, ctx.seed)[0]
        pixel_dimension = twonn_dimension(pixel_features)
        for name in ("shapes-cnn-a", "shapes-cnn-wide", "shapes-cnn-deep"):
            model = ctx.model(name)
            layers = layers_of(model)
            features = layer_features(model, data.images, layers, pool=4)
            rows = {}
            for layer in layers:
                spectrum = pca_spectrum(features[layer])
                rows[layer] = {"participation_ratio": participation_ratio(spectrum),
                               "components_90": components_for_variance(spectrum, 0.9),
                               "twonn": twonn_dimension(features[layer]),
                               "purity": clustering_purity(features[layer], labels, 8, ctx.seed)[0],
                               "width": int(features[layer].shape[1])}
            numbers["models"][SHORT[name]] = rows
            depth = np.linspace(0, 1, len(layers))
            axes[0].plot(depth, [rows[l]["twonn"] for l in layers], "o-", label=SHORT[name])
            axes[1].plot(depth, [rows[l]["purity"] for l in layers], "o-", label=SHORT[name])
        axes[0].axhline(pixel_dimension, color="black", linewidth=1.5, label="pixels")
        axes[0].set_ylabel("estimated dimension")
        axes[1].axhline(pixel_purity, color="black", linewidth=1.5, label="pixels")
        axes[1].axhline(1 / len(data.class_names), color="#999999", linestyle=":", label="chance")
        axes[0].set_title("intrinsic dimension (TwoNN)")
        axes[1].set_title("k-means purity (8 clusters)")
        for axis in axes:
            axis.set_xlabel("relative depth (first layer → logits)")
        axes[1].set_ylim(0, 1.05)
        axes[1].legend(loc="upper left", fontsize=12)
        fig.tight_layout()
        ctx.save(fig)
        numbers["pixel_purity"] = pixel_purity
        numbers["pixel_twonn"] = pixel_dimension
        return numbers


def first_of_class(data, model, name):
    """The first test image of the class that the model also classifies correctly."""
    from mechinterp.activations import predictions
    index = data.class_names.index(name)
    candidates = torch.nonzero(data.labels == index).flatten()[:50]
    predicted = predictions(model, data.images[candidates])
    correct = candidates[predicted == index]
    return data.images[correct[0] if len(correct) else candidates[0]]


def make_interpolation(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.universality.geometry import interpolation_path, path_length
        data = shapes_split("test", 500)
        model = ctx.model("shapes-cnn-a")
        start = first_of_class(data, model, ctx.params["start"])
        end = first_of_class(data, model, ctx.params["end"])
        dense = interpolation_path(model, start, end, ctx.params["dense_steps"], ctx.params["layer"])
        coarse = interpolation_path(model, start, end, ctx.params["steps"])
        fig = plt.figure(figsize=(13, 6))
        grid = fig.add_gridspec(2, len(coarse.alphas), height_ratios=[1, 2.2])
        for column, image in enumerate(coarse.images):
            axis = fig.add_subplot(grid[0, column])
            show_rgb(axis, image)
            axis.set_title(data.class_names[coarse.classes[column]], fontsize=12)
        curve = fig.add_subplot(grid[1, :])
        for index in sorted(set(dense.classes.tolist()) | {data.class_names.index(ctx.params["end"])}):
            curve.plot(dense.alphas, dense.probabilities[:, index], label=data.class_names[index])
        curve.set_xlabel("α   (image = (1 − α)·start + α·end)")
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

def random_batches(vectors, size, seed):
    """Endless batches of rows drawn with replacement."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield vectors[torch.randint(len(vectors), (size,), generator=generator).to(vectors.device)]


def top_feature_per_input(sae, clean, attacked):
    """For each input, the SAE feature whose code the attack raised most."""
    with torch.no_grad():
        return (sae.encode(attacked) - sae.encode(clean)).argmax(dim=1).cpu()


def train_feature_sae(ctx, model, layer, count, steps):
    """A TopK SAE on `layer`'s channel maxima (the classifier's input) over training images."""
    from mechinterp.superposition.sae import TopKSAE
    from mechinterp.superposition.sae_training import train_sae
    from mechinterp.activations import layer_features
    images = shapes_split("train", count).images
    vectors = layer_features(model, images, [layer], pool="max")[layer].to(ctx.device)
    sae = TopKSAE(vectors.shape[1], 4 * vectors.shape[1], k=8, seed=ctx.seed).to(ctx.device)
    log = train_sae(sae, random_batches(vectors, 256, ctx.seed), steps=steps, lr=1e-3)
    with torch.no_grad():
        reconstruction, _ = sae(vectors)
    explained = 1 - ((vectors - reconstruction) ** 2).sum() / ((vectors - vectors.mean(0)) ** 2).sum()
    return sae.eval(), float(explained), log.dead_fraction


def make_adversarial(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.activations import layer_features, predictions
        from mechinterp.universality.adversarial import (feature_preferred_class, hijacked_features,
                                                         pgd, success_vs_epsilon)
        params = ctx.params
        data = shapes_split("test", params["images"])
        model = ctx.model("shapes-cnn-a")
        layer = model.feature_layers[-1]
        rates = {"fgsm": success_vs_epsilon(model, data.images, data.labels, params["linf"], "fgsm"),
                 "pgd_linf": success_vs_epsilon(model, data.images, data.labels, params["linf"],
                                                "pgd_linf", params["steps"]),
                 "pgd_l2": success_vs_epsilon(model, data.images, data.labels, params["l2"],
                                              "pgd_l2", params["steps"])}
        sae, explained, dead = train_feature_sae(ctx, model, layer, params["sae_images"], params["sae_steps"])
        adversarial = pgd(model, data.images, data.labels, params["hijack_epsilon"], "linf",
                          params["steps"]).cpu()
        clean_pred, adversarial_pred = predictions(model, data.images), predictions(model, adversarial)
        flipped = (clean_pred == data.labels) & (adversarial_pred != data.labels)
        clean = layer_features(model, data.images[flipped], [layer], pool="max")[layer].to(ctx.device)
        attacked = layer_features(model, adversarial[flipped], [layer], pool="max")[layer].to(ctx.device)
        hijack = hijacked_features(sae, clean, attacked, top_k=6)
        reference = layer_features(model, shapes_split("train", 2000).images, [layer], pool="max")[layer]
        preferred = feature_preferred_class(sae, reference.to(ctx.device),
                                            shapes_split("train", 2000).labels, len(data.class_names))
        new_classes = adversarial_pred[flipped]
        per_input_top = top_feature_per_input(sae, clean, attacked)
        top_feature_names_new_class = float(np.mean(preferred[per_input_top.numpy()] == new_classes.numpy()))
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1, 1, 1.3]})
        axes[0].plot(params["linf"], rates["fgsm"], "o-", label="FGSM")
        axes[0].plot(params["linf"], rates["pgd_linf"], "s-", label=f"PGD ({params['steps']} steps)")
        axes[0].set_xlabel("ε  (L∞, pixel range 0–1)")
        axes[0].set_ylabel("attack success rate")
        axes[0].legend(loc="lower right")
        axes[1].plot(params["l2"], rates["pgd_l2"], "s-", color="#009E73", label="PGD L2")
        axes[1].set_xlabel("ε  (L2)")
        axes[1].legend(loc="lower right")
        for axis in axes[:2]:
            axis.set_ylim(0, 1.05)
        features = hijack.increased + hijack.decreased
        changes = hijack.increased_by + hijack.decreased_by
        names = [f"#{f} ({data.class_names[preferred[f]]})" for f in features]
        colours = ["#B2182B" if change > 0 else "#2166AC" for change in changes]
        axes[2].barh(range(len(features)), changes, color=colours)
        axes[2].set_yticks(range(len(features)), names, fontsize=12)
        axes[2].invert_yaxis()
        axes[2].xaxis.set_major_locator(plt.MaxNLocator(4))
        axes[2].set_xlabel(f"mean SAE code change (PGD ε={params['hijack_epsilon']})")
        axes[2].set_title("hijacked SAE features (their class)", fontsize=15)
        fig.tight_layout()
        ctx.save(fig)
        linf_index = params["linf"].index(params["reference_linf"])
        l2_index = params["l2"].index(params["reference_l2"])
        at_reference = {"linf": params["reference_linf"], "fgsm": rates["fgsm"][linf_index],
                        "pgd_linf": rates["pgd_linf"][linf_index], "l2": params["reference_l2"],
                        "pgd_l2": rates["pgd_l2"][l2_index]}
        return {"layer": layer, "images": len(data.images), "at_reference": at_reference,
                "epsilons_linf": params["linf"],
                "epsilons_l2": params["l2"], "success": rates, "sae_explained_variance": explained,
                "sae_dead_fraction": dead, "flipped": int(flipped.sum()),
                "hijacked_increased": hijack.increased,
                "hijacked_increased_classes": [data.class_names[preferred[f]] for f in hijack.increased],
                "hijacked_decreased": hijack.decreased,
                "hijacked_decreased_classes": [data.class_names[preferred[f]] for f in hijack.decreased],
                "top_share": hijack.top_share,
                # per flipped input: does the feature the attack raised most belong to the new class?
                "top_feature_is_new_class": top_feature_names_new_class,
                "top_feature_is_new_class_chance": 1 / (len(data.class_names) - 1)}


def make_adversarial_path(ctx):
    with one_cpu_thread(ctx.device):
        from mechinterp.universality.adversarial import adversarial_path
        data = shapes_split("test", 500)
        model = ctx.model("shapes-cnn-a")
        start = first_of_class(data, model, ctx.params["start"])
        target = data.class_names.index(ctx.params["target"])
        path = adversarial_path(model, start, target, ctx.params["epsilon"], "l2", ctx.params["steps"])
        shown = np.linspace(0, len(path.images) - 1, ctx.params["shown"]).round().astype(int)
        fig = plt.figure(figsize=(13, 6))
        grid = fig.add_gridspec(2, len(shown), height_ratios=[1, 2.0])
        for column, step in enumerate(shown):
            axis = fig.add_subplot(grid[0, column])
            show_rgb(axis, path.images[step])
            axis.set_title(f"{step}: {data.class_names[path.classes[step]]}", fontsize=12)
        curve = fig.add_subplot(grid[1, :])
        start_class = int(path.classes[0])
        curve.plot(path.distances, path.probabilities[:, start_class], "o-", markersize=4,
                   label=data.class_names[start_class])
        curve.plot(path.distances, path.target_probability, "o-", markersize=4,
                   label=ctx.params["target"])
        curve.set_xlabel("L2 distance from the clean image")
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
