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
are its stages layer1..layer4 and fc). Every figure reads the models its FIGURES entry declares
(the lists below are only the repo's entries): the first two, when of one architecture, are the
two seeds; a zoo entry with `torchvision:` is a torchvision model; a comparison the declared models
do not allow is left out of the figure and its title.
"""
import matplotlib.pyplot as plt
import numpy as np

from figures_src.plotting import heat_map, model_label, show_image

SEEDS = ["shapes-cnn-a", "shapes-cnn-a-seed1"]   # one architecture from two seeds
# our four CNNs, then torchvision's ResNet-18 trained on the same shapes
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


def architecture(ctx, name):
    """What a declared model is built from: its zoo entry's torchvision name or architecture and
    that entry's kwargs (one class at two widths is two architectures)."""
    config = ctx.model_meta(name)["config"]
    return config.get("torchvision") or config.get("architecture") or name, repr(config.get("kwargs"))


def is_torchvision(ctx, name):
    return "torchvision" in ctx.model_meta(name)["config"]


def declared_roles(ctx, least=2):
    """(declared models, the two seeds or None, the models not from torchvision, the torchvision
    ones); one message saying what to declare when fewer than `least` models are declared."""
    from figures_src.runner.context import FigureInputError
    names = list(ctx.declared_models)
    if len(names) < least:
        raise FigureInputError(
            f"figure {ctx.figure_id!r} compares models but declares {len(names)}: list at least {least} "
            f"in \"models\" in FIGURES[{ctx.figure_id!r}] in {ctx.script} (two seeds of one architecture "
            "first; a model against itself also runs)")
    seeds = names[:2] if architecture(ctx, names[0]) == architecture(ctx, names[1]) else None
    torchvision = [name for name in names if is_torchvision(ctx, name)]
    return names, seeds, [name for name in names if name not in torchvision], torchvision


def representations(model, images, layers=None):
    """{layer: LayerFeatures} (Gram matrices computed once) of the model's representation layers."""
    from mechinterp.activations import layer_features, representation_layers
    from mechinterp.representations.similarity import as_layers
    return as_layers(layer_features(model, images, layers or representation_layers(model)))


# --- similarity of representations -----------------------------------------------------------

def make_cka_maps(ctx):
    names, seeds, _, torchvision = declared_roles(ctx)
    images = ctx.counted_dataset("test", "images").images
    features = {name: representations(ctx.model(name), images) for name in names}
    first = names[0]
    fig, pairs = cka_panels(features, [(first, other) for other in names[1:]])
    numbers = {"images": len(images), "pairs": pairs}
    if seeds:
        within = pairs[f"{model_label(seeds[0])} vs {model_label(seeds[1])}"]["linear_cka"]
        numbers["seed_diagonal_mean"] = float(np.diag(within).mean())
        numbers["seed_off_diagonal_mean"] = float(within[~np.eye(len(within), dtype=bool)].mean())
    if torchvision and first not in torchvision:
        numbers["torchvision"] = {model_label(name): best_matches(pairs[f"{model_label(first)} vs {model_label(name)}"])
                                  for name in torchvision}
    fig.suptitle("Linear CKA between layers: " + cka_title(names, seeds, torchvision))
    ctx.save(fig)
    return numbers


def cka_title(names, seeds, torchvision):
    """What the CKA panels show, in their order: two seeds, other architectures, torchvision's."""
    others = [name for name in names[1 + bool(seeds):] if name not in torchvision]
    parts = (["two seeds"] if seeds else []) + (["other architectures"] if others else [])
    if torchvision:
        parts.append("torchvision's " + " and ".join(model_label(name) for name in torchvision))
    return ", then ".join(parts) or f"{model_label(names[0])} against the others"


def make_googlenet_cka(ctx):
    names = declared_roles(ctx)[0]
    images = ctx.counted_dataset("test", "images").images
    features = {name: representations(ctx.model(name), images) for name in names}
    googlenet = names[-1]           # the last declared model, against each of the others
    fig, pairs = cka_panels(features, [(name, googlenet) for name in names[:-1]])
    fig.suptitle(f"Linear CKA between layers: {' and '.join(model_label(name) for name in names[:-1])} "
                 f"against {model_label(googlenet)}")
    ctx.save(fig)
    return {"images": len(images), "pairs": pairs,
            "best": {label: best_matches(pair) for label, pair in pairs.items()}}


def cka_panels(features, pairs):
    """One linear-CKA heat map per (model a, model b) pair; the figure and {"a vs b": numbers}."""
    from mechinterp.representations.similarity import similarity_matrix
    widths = [len(features[b]) for _, b in pairs]
    # constrained: each panel's row label clears the numbers in its neighbour's last column
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.75 * len(pairs), 5.4), squeeze=False,
                             gridspec_kw={"width_ratios": widths}, layout="constrained")
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
    names, seeds, cnns, torchvision = declared_roles(ctx)
    images = ctx.counted_dataset("test", "images").images
    models = {name: ctx.model(name) for name in names}
    # Kornblith et al.'s test proper: two seeds of one architecture, every module's output
    # (conv, ReLU, pooling), so neighbouring layers compete with the right one.
    seed_features = [representations(models[name], images, module_outputs(models[name])) for name in seeds or []]
    # Across architectures there is no true partner layer; relative depth is the guess tested.
    features = {name: {layer: every[layer] for layer in representation_layers(models[name])}
                for name, every in zip(seeds or [], seed_features)}
    features.update({name: representations(models[name], images) for name in names if name not in features})
    cross_pairs = [(a, b) for i, a in enumerate(cnns) for b in cnns[i + 1:]
                   if architecture(ctx, a) != architecture(ctx, b)]
    torchvision_pairs = [(a, b) for a in cnns for b in torchvision]
    groups = {"seeds_every_module": [seed_features] if seeds else [],
              "across_architectures": [(features[a], features[b]) for a, b in cross_pairs],
              "with_torchvision": [(features[a], features[b]) for a, b in torchvision_pairs]}
    # A comparison the declared models do not allow (no seeds, one architecture, no torchvision) is left out.
    accuracy = {group: correspondence_accuracy(pairs, MEASURE_NAMES) for group, pairs in groups.items() if pairs}
    if not accuracy:
        raise_nothing_to_compare(ctx)
    ctx.save(draw_correspondence(accuracy, torchvision))
    return {"images": len(images), "accuracy": accuracy,
            "penultimate_mutual_knn": penultimate_alignment(models, images, ctx.seed, torchvision),
            "seed_layers": list(seed_features[0]) if seeds else [],
            "cross_pairs": [f"{model_label(a)} vs {model_label(b)}" for a, b in cross_pairs],
            "torchvision_pairs": [f"{model_label(a)} vs {model_label(b)}" for a, b in torchvision_pairs]}


def raise_nothing_to_compare(ctx):
    from figures_src.runner.context import FigureInputError
    raise FigureInputError(
        f"figure {ctx.figure_id!r}: its models {', '.join(ctx.declared_models)} give nothing to compare: "
        f"declare in \"models\" in FIGURES[{ctx.figure_id!r}] in {ctx.script} two seeds of one "
        "architecture first, or models of two architectures, or a torchvision model and one of yours")


def draw_correspondence(accuracy, torchvision):
    shown = " and ".join(model_label(name) for name in torchvision)
    labels = {"seeds_every_module": "two seeds, every module",
              "across_architectures": "our CNNs, relative depth",
              "with_torchvision": f"our CNNs vs {shown}, relative depth"}
    groups = {group: labels[group] for group in accuracy}
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
    axis.legend(loc="upper center", ncol=len(groups), fontsize=11)
    axis.set_title("Is the most similar layer of the other model the corresponding one?")
    return fig


def penultimate_alignment(models, images, seed, torchvision):
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
    # Means only over pairs there are (one model declared twice is one model: no pair).
    if trained:
        result["mean_trained"] = float(np.mean(list(trained.values())))
        result["mean_random_weights"] = float(np.mean(list(untrained.values())))
    with_torchvision = [(a, b) for a, b in trained if (a in torchvision) != (b in torchvision)]
    if with_torchvision:
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
    images = ctx.counted_dataset("test", "images").images
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
    from mechinterp.featvis.dataset_examples import receptive_field_crops, top_activating_examples
    from mechinterp.universality.matching import match_units, unit_correlations
    images = ctx.counted_dataset("test", "images").images
    pairs, examples, top_k = (ctx.params[key] for key in ("pairs", "examples", "top"))
    models = [ctx.model(name) for name in ctx.declared_models[:2]]   # two seeds of one architecture
    layer = ctx.layer(models[0])
    crop_field(ctx, models[0], layer, images.shape[1:])              # a layer it can crop, before any work
    matching = match_units(unit_correlations(*(activation_maps(m, images, [layer])[layer] for m in models)))
    # Dataset examples as the crops each unit sees at its strongest position (featvis).
    tops = [top_activating_examples(model, layer, images, k=top_k, progress=False) for model in models]
    fields = [crop_field(ctx, model, layer, images.shape[1:]) for model in models]
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


def crop_field(ctx, model, layer, input_shape):
    """The receptive field the dataset examples are cropped at; a layer with no image positions
    (a vector layer, an MLP's) is the figure's message naming the model's layers and the param."""
    from mechinterp.featvis.dataset_examples import NotSpatialError, receptive_field
    try:
        return receptive_field(model, layer, input_shape)
    except ValueError as error:        # NotSpatialError: it ran, with no positions; else it did not run
        because = f"its output {error.output}" if isinstance(error, NotSpatialError) else str(error)
        raise ctx.wrong_layer_kind(model, "a layer with image positions to crop its dataset examples at",
                                   "layer" if model.conv_layers else None, layer, because) from None


def label_pair(axes_row, units, correlation, examples):
    """The correlation between the two halves of a row, and each unit's number at its side."""
    axes_row[examples].axis("off")
    axes_row[examples].text(0.5, 0.5, f"r={correlation:.2f}", ha="center", va="center", fontsize=13,
                            transform=axes_row[examples].transAxes)
    axes_row[0].set_ylabel(f"#{units[0]}", rotation=0, ha="right", va="center")
    axes_row[-1].yaxis.set_label_position("right")
    axes_row[-1].set_ylabel(f"#{units[1]}", rotation=0, ha="left", va="center")
