"""Universality, part one: do two models represent the same things, layer by layer and unit by unit?

universality/cka-maps               linear CKA between every pair of layers: two seeds of one
                                    architecture, and across architectures (wide, deep, and
                                    torchvision's ResNet-18 trained on the same shapes)
universality/googlenet-cka          the same against torchvision's GoogLeNet (InceptionV1), made only
                                    by the gpu profile, whose zoo entry trains only on a GPU
universality/layer-correspondence   Kornblith et al.'s test: is the most similar layer of the other
                                    model the one at the same depth? accuracy per measure
universality/unit-matching          best one-to-one unit matches across seeds (correlation,
                                    Hungarian assignment) against a shuffled-image baseline
universality/matched-units          matched unit pairs shown by their top dataset examples

Layer names come from each model's description (feature_layers, classifier_layer; ResNet-18's
are its stages layer1..layer4 and fc); the models are the lists below, the first two of SEEDS
being one architecture trained from two seeds.
"""
import matplotlib.pyplot as plt
import numpy as np

from figures_src.plotting import heat_map, model_label, show_image

CNNS = ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"]
SEEDS = ["shapes-cnn-a", "shapes-cnn-a-seed1"]
TORCHVISION = ["shapes-resnet18"]          # torchvision architectures trained on the same shapes
COMPARED = ["shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep", "shapes-resnet18"]
GPU_COMPARED = ["shapes-cnn-a", "shapes-resnet18", "shapes-googlenet"]   # GoogLeNet: a GPU-only zoo model

FIGURES = {
    "universality/cka-maps": {
        "make": "make_cka_maps", "models": COMPARED, "outputs": ["png"],
        "params": {"quick": {"images": 300}, "full": {"images": 1000}},
    },
    "universality/googlenet-cka": {          # only `make figures PROFILE=gpu DEVICE=cuda` trains GoogLeNet
        "make": "make_googlenet_cka", "models": GPU_COMPARED, "outputs": ["png"],
        "profiles": ["gpu"],
        "params": {"images": 1000},
    },
    "universality/layer-correspondence": {
        "make": "make_layer_correspondence", "models": COMPARED, "outputs": ["png"],
        "params": {"quick": {"images": 300}, "full": {"images": 1000}},
    },
    "universality/unit-matching": {
        "make": "make_unit_matching", "models": SEEDS, "outputs": ["png"],
        "params": {"quick": {"images": 300}, "full": {"images": 2000}},
    },
    "universality/matched-units": {
        "make": "make_matched_units", "models": SEEDS, "outputs": ["png"],
        "params": {"quick": {"images": 400, "layer": "relu2", "pairs": 4, "examples": 5, "top": 20},
                   "full": {"images": 2000, "layer": "relu2", "pairs": 4, "examples": 5, "top": 20}},
    },
}


MEASURE_NAMES = {"linear_cka": "linear CKA", "debiased_cka": "debiased CKA", "rbf_cka": "RBF CKA",
                 "svcca": "SVCCA", "mutual_knn": "mutual k-NN"}


def test_images(ctx, count):
    """Test images of the figure's first declared model's data (its zoo entry's dataset)."""
    return ctx.dataset(ctx.declared_models[0], "test", count=count).images


def representations(model, images, layers=None):
    """{layer: LayerFeatures} (Gram matrices computed once) of the model's representation layers."""
    from mechinterp.activations import layer_features, representation_layers
    from mechinterp.representations.similarity import as_layers
    return as_layers(layer_features(model, images, layers or representation_layers(model)))


# --- similarity of representations -----------------------------------------------------------

def make_cka_maps(ctx):
    images = test_images(ctx, ctx.params["images"])
    features = {name: representations(ctx.model(name), images) for name in COMPARED}
    fig, pairs = cka_panels(features, [(CNNS[0], other) for other in COMPARED[1:]])
    numbers = {"images": len(images), "pairs": pairs}
    within = pairs[f"{model_label(SEEDS[0])} vs {model_label(SEEDS[1])}"]["linear_cka"]
    numbers["seed_diagonal_mean"] = float(np.diag(within).mean())
    numbers["seed_off_diagonal_mean"] = float(within[~np.eye(len(within), dtype=bool)].mean())
    numbers["torchvision"] = {model_label(name): best_matches(pairs[f"{model_label(CNNS[0])} vs {model_label(name)}"])
                              for name in TORCHVISION}
    fig.suptitle("Linear CKA between layers: two seeds, then other architectures, then torchvision's ResNet-18")
    fig.tight_layout()
    ctx.save(fig)
    return numbers


def make_googlenet_cka(ctx):
    images = test_images(ctx, ctx.params["images"])
    features = {name: representations(ctx.model(name), images) for name in GPU_COMPARED}
    googlenet = GPU_COMPARED[-1]
    fig, pairs = cka_panels(features, [(name, googlenet) for name in GPU_COMPARED[:-1]])
    fig.suptitle("Linear CKA between layers: A and ResNet-18 against GoogLeNet (InceptionV1)")
    fig.tight_layout()
    ctx.save(fig)
    return {"images": len(images), "pairs": pairs,
            "best": {label: best_matches(pair) for label, pair in pairs.items()}}


def cka_panels(features, pairs):
    """One linear-CKA heat map per (model a, model b) pair; the figure and {"a vs b": numbers}."""
    from mechinterp.representations.similarity import similarity_matrix
    widths = [len(features[b]) for _, b in pairs]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.75 * len(pairs), 5.4), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    numbers = {}
    for axis, (name_a, name_b) in zip(axes[0], pairs):
        matrix = similarity_matrix(features[name_a], features[name_b], "linear_cka").numpy()
        heat_map(axis, matrix.T, list(features[name_b]), list(features[name_a]))
        axis.set_xlabel(model_label(name_a))
        axis.set_ylabel(model_label(name_b))
        axis.set_title(f"{model_label(name_a)} vs {model_label(name_b)}")
        numbers[f"{model_label(name_a)} vs {model_label(name_b)}"] = {
            "layers_a": list(features[name_a]), "layers_b": list(features[name_b]), "linear_cka": matrix}
    return fig, numbers


def best_matches(pair):
    """For each layer of model A, the most similar layer of the other model and their CKA."""
    matrix = pair["linear_cka"]
    best = {layer: {"layer": pair["layers_b"][int(row.argmax())], "linear_cka": float(row.max())}
            for layer, row in zip(pair["layers_a"], matrix)}
    return {"best": best, "mean_best": float(matrix.max(axis=1).mean())}


def make_layer_correspondence(ctx):
    from mechinterp.activations import representation_layers
    from mechinterp.universality.comparison import correspondence_accuracy, module_outputs
    images = test_images(ctx, ctx.params["images"])
    models = {name: ctx.model(name) for name in COMPARED}
    # Kornblith et al.'s test proper: two seeds of one architecture, every module's output
    # (conv, ReLU, pooling), so neighbouring layers compete with the right one.
    seed_features = [representations(models[name], images, module_outputs(models[name])) for name in SEEDS]
    # Across architectures there is no true partner layer; relative depth is the guess tested.
    features = {name: {layer: seeds[layer] for layer in representation_layers(models[name])}
                for name, seeds in zip(SEEDS, seed_features)}
    features.update({name: representations(models[name], images) for name in COMPARED if name not in SEEDS})
    cross_pairs = [(a, b) for i, a in enumerate(CNNS) for b in CNNS[i + 1:] if {a, b} != set(SEEDS)]
    torchvision_pairs = [(a, b) for a in CNNS for b in TORCHVISION]
    accuracy = {
        "seeds_every_module": correspondence_accuracy([seed_features], MEASURE_NAMES),
        "across_architectures": correspondence_accuracy(
            [(features[a], features[b]) for a, b in cross_pairs], MEASURE_NAMES),
        "with_torchvision": correspondence_accuracy(
            [(features[a], features[b]) for a, b in torchvision_pairs], MEASURE_NAMES)}
    ctx.save(draw_correspondence(accuracy))
    return {"images": len(images), "accuracy": accuracy,
            "penultimate_mutual_knn": penultimate_alignment(models, images, ctx.seed),
            "seed_layers": list(seed_features[0]),
            "cross_pairs": [f"{model_label(a)} vs {model_label(b)}" for a, b in cross_pairs],
            "torchvision_pairs": [f"{model_label(a)} vs {model_label(b)}" for a, b in torchvision_pairs]}


def draw_correspondence(accuracy):
    groups = {"seeds_every_module": "two seeds, every module",
              "across_architectures": "our CNNs, relative depth",
              "with_torchvision": "our CNNs vs ResNet-18, relative depth"}
    fig, axis = plt.subplots(figsize=(11, 5.6))
    positions = np.arange(len(MEASURE_NAMES))
    width = 0.8 / len(groups)
    for index, (group, values) in enumerate(accuracy.items()):
        offset = (index - (len(groups) - 1) / 2) * width
        axis.bar(positions + offset, [values[m] for m in MEASURE_NAMES], width=width, label=groups[group])
    axis.set_xticks(positions, list(MEASURE_NAMES.values()))
    axis.set_ylim(0, 1.3)
    axis.set_yticks(np.linspace(0, 1, 6))
    axis.set_ylabel("layers whose best match is right")
    axis.legend(loc="upper center", ncol=3, fontsize=11)
    axis.set_title("Is the most similar layer of the other model the corresponding one?")
    return fig


def penultimate_alignment(models, images, seed):
    """Mutual k-NN alignment (Huh et al.'s Platonic-representation measure) of what each
    classifier reads (last feature layer, max over space) for every pair of models, trained and
    with random weights: how much of the agreement comes from training rather than the pixels."""
    from mechinterp.activations import layer_features
    from mechinterp.universality.baselines import randomly_initialised
    from mechinterp.universality.comparison import pairwise
    from mechinterp.representations.similarity import mutual_knn_alignment

    def penultimate(model):
        layer = model.feature_layers[-1]
        return layer_features(model, images, [layer], pool="max")[layer]
    trained = pairwise({name: penultimate(model) for name, model in models.items()}, mutual_knn_alignment)
    untrained = pairwise({name: penultimate(randomly_initialised(model, seed + index))   # distinct draws
                          for index, (name, model) in enumerate(models.items())}, mutual_knn_alignment)
    result = {f"{model_label(a)} vs {model_label(b)}": {"trained": trained[a, b], "random_weights": untrained[a, b]}
              for a, b in trained}
    result["mean_trained"] = float(np.mean(list(trained.values())))
    result["mean_random_weights"] = float(np.mean(list(untrained.values())))
    with_torchvision = [(a, b) for a, b in trained if (a in TORCHVISION) != (b in TORCHVISION)]
    result["mean_trained_with_torchvision"] = float(np.mean([trained[p] for p in with_torchvision]))
    result["mean_random_weights_with_torchvision"] = float(np.mean([untrained[p] for p in with_torchvision]))
    return result


# --- units across models -----------------------------------------------------------------------

def activation_maps(model, images, layers):
    """{layer: (N, C, H, W)} activations with conv maps kept spatial (one forward pass)."""
    from mechinterp.device import model_device
    from mechinterp.hooks import run_with_cache
    device = model_device(model)
    return {layer: value.cpu() for layer, value in run_with_cache(model, images.to(device), layers)[1].items()}


def make_unit_matching(ctx):
    from mechinterp.universality.matching import match_units, shuffled_matching, unit_correlations
    images = test_images(ctx, ctx.params["images"])
    model_a, model_b = (ctx.model(name) for name in ctx.declared_models[:2])   # two seeds of one architecture
    layers = list(model_a.feature_layers)
    maps_a, maps_b = activation_maps(model_a, images, layers), activation_maps(model_b, images, layers)
    fig, axes = plt.subplots(1, len(layers), figsize=(15, 5), sharey=True, squeeze=False)
    numbers = {"images": len(images), "layers": {}}
    bins = np.linspace(-0.2, 1.0, 25)
    for axis, layer in zip(axes[0], layers):
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
    axes[0, 0].set_ylabel("unit pairs")
    axes[0, 0].legend(loc="upper left")
    fig.suptitle("Units of seed 0 matched one-to-one to units of seed 1")
    fig.tight_layout()
    ctx.save(fig)
    return numbers


def make_matched_units(ctx):
    from mechinterp.featvis.dataset_examples import (receptive_field, receptive_field_crops,
                                                     top_activating_examples)
    from mechinterp.universality.matching import match_units, unit_correlations
    images = test_images(ctx, ctx.params["images"])
    pairs, examples, top_k = (ctx.params[key] for key in ("pairs", "examples", "top"))
    models = [ctx.model(name) for name in ctx.declared_models[:2]]   # two seeds of one architecture
    layer = ctx.layer(models[0])
    matching = match_units(unit_correlations(*(activation_maps(m, images, [layer])[layer] for m in models)))
    # Dataset examples as the crops each unit sees at its strongest position (featvis).
    tops = [top_activating_examples(model, layer, images, k=top_k, progress=False) for model in models]
    fields = [receptive_field(model, layer, images.shape[1:]) for model in models]
    fig, axes = plt.subplots(pairs, 2 * examples + 1, figsize=(12, 1.45 * pairs + 1.0), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * examples + [0.5] + [1] * examples})
    shown = []
    for row, (units, correlation) in enumerate(zip(matching.pairs[:pairs], matching.correlations)):
        for side, (unit, top, field) in enumerate(zip(units, tops, fields)):
            for column, crop in enumerate(receptive_field_crops(images, top, field, unit)[:examples]):
                show_image(axes[row, side * (examples + 1) + column], crop)
        label_pair(axes[row], units, correlation, examples)
        top_sets = [set(top.indices[unit].tolist()) for unit, top in zip(units, tops)]
        shown.append({"unit_a": units[0], "unit_b": units[1], "correlation": float(correlation),
                      "shared_top_images": len(top_sets[0] & top_sets[1]) / top_k})
    axes[0, examples // 2].set_title(f"seed 0 · {layer}")
    axes[0, examples + 1 + examples // 2].set_title(f"seed 1 · {layer}")
    ctx.save(fig)
    return {"layer": layer, "images": len(images), "pairs": shown, "top": top_k,
            "receptive_field": list(fields[0].size),
            "mean_shared_top_images": float(np.mean([p["shared_top_images"] for p in shown]))}


def label_pair(axes_row, units, correlation, examples):
    """The correlation between the two halves of a row, and each unit's number at its side."""
    axes_row[examples].axis("off")
    axes_row[examples].text(0.5, 0.5, f"r={correlation:.2f}", ha="center", va="center", fontsize=13,
                            transform=axes_row[examples].transAxes)
    axes_row[0].set_ylabel(f"#{units[0]}", rotation=0, ha="right", va="center")
    axes_row[-1].yaxis.set_label_position("right")
    axes_row[-1].set_ylabel(f"#{units[1]}", rotation=0, ha="left", va="center")
