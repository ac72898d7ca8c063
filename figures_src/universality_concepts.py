"""Universality, part three: what a model's layers hold, read out by probes, concepts and geometry.

universality/probes                 linear-probe accuracy per layer against chance, a shuffled-label
                                    control and the same architecture with random weights
universality/tcav                   concepts x layers: CAV accuracy and significant TCAV scores
universality/embedding              a layer's activations in 2-D (PCA, ICA, kernel PCA, t-SNE) by class
universality/geometry               intrinsic dimension and k-means purity of every layer

Each figure reads the models its FIGURES entry declares (PROBED and GEOMETRY are only the repo's
entries) and the data of the first one; image counts are params. Layers come from each model's
description; cluster counts are the dataset's number of classes; TCAV's texture concepts (params
"textures") are drawn at the model's input shape, for a model that takes images only. Baselines are
"pixels" for an image model and "inputs" for one that takes vectors; the embedding's "channel maxima"
only for a conv map.
"""
import matplotlib.pyplot as plt
import numpy as np

from figures_src.plotting import class_scatter, heat_map, input_name, legend_outside, model_label, text_colour

PROBED = ["shapes-cnn-a", "shapes-cnn-deep"]          # the first is drawn, all are in the JSON
GEOMETRY = ["shapes-cnn-a", "shapes-cnn-wide", "shapes-cnn-deep"]

FIGURES = {
    "universality/probes": {
        "make": "make_probes", "models": PROBED, "outputs": ["png"],
        "params": {"quick": {"images": 400}, "full": {"images": 2000}},
    },
    "universality/tcav": {
        "make": "make_tcav", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {"target": "circle", "examples": 40, "random_sets": 5,
                             "concepts": ["arc", "line", "corner", "square"], "textures": ["stripes", "noise"],
                             "train_images": 4000, "test_images": 1000},
                   "full": {"target": "circle", "examples": 100, "random_sets": 20,
                            "concepts": ["arc", "line", "corner", "square"], "textures": ["stripes", "noise"],
                            "train_images": 4000, "test_images": 1000}},
    },
    "universality/embedding": {
        "make": "make_embedding", "models": ["shapes-cnn-a"], "outputs": ["png"],
        "params": {"quick": {"images": 300, "layer": "relu3"}, "full": {"images": 1500, "layer": "relu3"}},
    },
    "universality/geometry": {
        "make": "make_geometry", "models": GEOMETRY, "outputs": ["png"],
        "params": {"quick": {"images": 400}, "full": {"images": 2000}},
    },
}


def declared(ctx):
    """The declared models, each once, in order."""
    return list(dict.fromkeys(ctx.declared_models))


# --- probes ------------------------------------------------------------------------------------

def make_probes(ctx):
    from mechinterp.activations import as_features, representation_layers
    from mechinterp.universality.baselines import randomly_initialised
    from mechinterp.representations.probes import probe, probe_layers
    data = ctx.counted_dataset("test", "images")
    results, numbers, inputs = {}, {"images": len(data.images), "models": {}}, None
    pixels = probe(as_features(data.images, pool=8), data.labels, seed=ctx.seed)  # 8x8 colour
    for name in declared(ctx):
        model = ctx.model(name)
        inputs = inputs or input_name(model)      # the first model's: "pixels" or "inputs"
        layers = representation_layers(model)
        trained = probe_layers(model, data.images, data.labels, layers, seed=ctx.seed)
        untrained = probe_layers(randomly_initialised(model, ctx.seed), data.images, data.labels,
                                 layers, seed=ctx.seed)
        results[name] = (layers, trained, untrained)
        numbers["models"][model_label(name)] = {
            layer: {**trained[layer].as_dict(), "random_weights_accuracy": untrained[layer].accuracy}
            for layer in layers}
    numbers["pixels"] = pixels.as_dict()      # the raw-input probe, drawn as `inputs`
    numbers["chance"], numbers["inputs"] = pixels.chance, inputs
    # Drawn for the first model at half-slide size (it shares a slide with TCAV); the rest is in the JSON.
    shown = next(iter(results))
    ctx.save(draw_probes(pixels, *results[shown], f"Linear probes on {shown}", inputs))
    return numbers


def draw_probes(pixels, layers, trained, untrained, title, inputs):
    steps = [inputs] + layers
    fig, axis = plt.subplots(figsize=(6.2, 5.6))
    axis.plot(steps, [pixels.accuracy] + [trained[l].accuracy for l in layers], "o-", label="trained model")
    axis.plot(steps, [pixels.accuracy] + [untrained[l].accuracy for l in layers], "s--",
              label="random weights")
    axis.plot(steps, [pixels.control_accuracy] + [trained[l].control_accuracy for l in layers],
              "^:", label="shuffled labels")
    axis.axhline(pixels.chance, color="black", linewidth=1.5, label="chance")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("probe accuracy (held out)")
    legend_outside(axis)
    axis.set_title(title, fontsize=17)
    return fig


# --- concepts ----------------------------------------------------------------------------------

def concept_sets(ctx, data, model, count, rng):
    """Concept examples: the classes params "concepts" names (ones the target is not), plus the
    image textures params "textures" names, drawn at the model's input shape (an image model's)."""
    from mechinterp.featvis.stimuli import random_gratings, uniform_noise
    textures = {"stripes": random_gratings, "noise": uniform_noise}
    concepts = {name: data.images[data.labels == data.class_names.index(name)][:count]
                for name in ctx.params["concepts"]}
    check_concept_counts(ctx, concepts, count)
    check_textures(ctx, model, textures)
    for texture in ctx.params["textures"]:
        concepts[texture] = textures[texture](count, rng, model.input_shape)
    return concepts


def check_concept_counts(ctx, concepts, count) -> None:
    """Each concept set holds params "examples" images, as the random sets do: a smaller set
    would be compared with larger random ones without a word."""
    from figures_src.runner.context import FigureInputError
    short = {name: len(images) for name, images in concepts.items() if len(images) < count}
    if short:
        name, found = min(short.items(), key=lambda item: item[1])
        raise FigureInputError(
            f"figure {ctx.figure_id!r}: params 'examples' asks for {count} examples of each concept, but "
            f"class {name!r} has {found} among the first {ctx.params['train_images']} train images: set "
            f"'examples' to at most {found}, or raise 'train_images', in FIGURES[{ctx.figure_id!r}][\"params\"] "
            f"in {ctx.script}")


def check_textures(ctx, model, textures) -> None:
    """params "textures" must name known textures, and only for a model that takes images."""
    from figures_src.runner.context import FigureInputError
    from mechinterp.names import did_you_mean
    wanted, where = ctx.params["textures"], f"FIGURES[{ctx.figure_id!r}][\"params\"] in {ctx.script}"
    for texture in wanted:
        if texture not in textures:
            raise FigureInputError(f"figure {ctx.figure_id!r}: params 'textures' names {texture!r}"
                                   f"{did_you_mean(texture, list(textures))}; the textures are "
                                   f"{', '.join(textures)}: set 'textures' in {where}")
    if wanted and input_name(model) != "pixels":
        raise FigureInputError(
            f"figure {ctx.figure_id!r}: params 'textures' asks for {', '.join(wanted)}, image textures "
            f"drawn at a (C, H, W) input, but model {model.zoo_name!r} takes inputs of shape "
            f"{tuple(model.input_shape)}: set 'textures' to [] in {where}; its concepts are then the "
            "classes params 'concepts' names, examples of your own data (TCAV needs a set of examples "
            "of each concept it tests)")


def make_tcav(ctx):
    from mechinterp.attribution.tcav import concept_layer_map
    rng = np.random.default_rng(ctx.seed)
    examples, target = ctx.params["examples"], ctx.params["target"]
    model = ctx.model(ctx.declared_models[0])
    data = ctx.counted_dataset("train", "train_images")
    target_index = ctx.class_index(data.class_names, "target")
    for concept in ctx.params["concepts"]:
        ctx.class_index(data.class_names, "concepts", concept)
    others = data[data.labels != target_index]
    concepts = concept_sets(ctx, others, model, examples, rng)
    random_sets = [others.images[rng.choice(len(others), examples, replace=False)]
                   for _ in range(ctx.params["random_sets"])]
    test = ctx.counted_dataset("test", "test_images")
    class_images = test.images[test.labels == target_index][:examples]
    layers = list(model.feature_layers)
    table = concept_layer_map(model, layers, concepts, random_sets, class_images, target_index, ctx.seed)
    ig_share = ig_shares_along_cavs(model, table, class_images, target_index)
    names = list(concepts)
    cav_accuracy = np.array([[table[c][l].as_dict()["cav_accuracy"] for l in layers] for c in names])
    scores = np.array([[table[c][l].mean for l in layers] for c in names])
    significant = np.array([[table[c][l].significant() for l in layers] for c in names])
    ctx.save(draw_tcav(scores, significant, cav_accuracy, names, layers, target))
    return {"target": target, "layers": layers, "concepts": names, "random_sets": len(random_sets),
            "ig_share_along_cav": ig_share,
            "cav_accuracy": cav_accuracy, "tcav": scores, "significant": significant,
            "results": {c: {l: table[c][l].as_dict() for l in layers} for c in names}}


def ig_shares_along_cavs(model, table, images, class_index):
    """{concept: {layer: mean share of the class logit's layer IG lying along the concept's CAV}}
    (integrated gradients projected on a CAV: where in the network the concept is used)."""
    from mechinterp.attribution.tcav import concept_attribution
    concepts, layers = list(table), list(next(iter(table.values())))
    shares = {concept: {} for concept in concepts}
    for layer in layers:
        directions = np.stack([table[concept][layer].mean_direction for concept in concepts])
        along, total = concept_attribution(model, layer, images, class_index, directions, steps=16)
        for concept, share in zip(concepts, (along / total[:, None]).mean(axis=0)):
            shares[concept][layer] = float(share)
    return shares


def draw_tcav(scores, significant, cav_accuracy, names, layers, target):
    """Half-slide size (it shares a slide with the probes): colour and big number = TCAV score
    where significant; small number = CAV accuracy, how linearly present the concept is."""
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
    return fig


# --- geometry ------------------------------------------------------------------------------------

def make_embedding(ctx):
    from mechinterp.activations import layer_features
    from mechinterp.representations.geometry import clustering_purity, embed_2d
    data = ctx.counted_dataset("test", "images")
    model = ctx.model(ctx.declared_models[0])
    layer = ctx.layer(model)
    features = layer_features(model, data.images, [layer], pool="max")[layer]
    read = "channel maxima" if is_conv_map(model, layer, data.images[:1]) else "activations"
    labels, classes = data.labels.numpy(), len(data.class_names)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.8))
    numbers = {"layer": layer, "images": len(labels), "clusters": classes, "embedding_purity": {}, "read": read}
    titles = {"pca": "PCA", "ica": "ICA", "kpca": "kernel PCA", "tsne": "t-SNE"}
    for axis, (method, title) in zip(axes, titles.items()):
        points = embed_2d(features, method, seed=ctx.seed)
        class_scatter(axis, points, labels, data.class_names, title)
        numbers["embedding_purity"][method] = clustering_purity(points, labels, classes, ctx.seed)[0]
    legend_outside(axes[-1], markerscale=2.5, fontsize=12)
    fig.suptitle(f"{ctx.declared_models[0]} · {layer} ({read}: what the classifier reads), by class")
    fig.tight_layout()
    ctx.save(fig)
    return numbers


def is_conv_map(model, layer, image) -> bool:
    """Whether the layer's output is a conv map (N, C, H, W), whose channels are pooled to maxima."""
    from mechinterp.hooks import run_with_cache
    return run_with_cache(model, image, [layer])[1][layer].dim() == 4


def layer_geometry(features, labels, clusters, seed):
    """Participation ratio, components for 90% variance, TwoNN dimension, k-means purity, width."""
    from mechinterp.representations.geometry import (clustering_purity, components_for_variance,
                                                     participation_ratio, pca_spectrum, twonn_dimension)
    spectrum = pca_spectrum(features)
    return {"participation_ratio": participation_ratio(spectrum),
            "components_90": components_for_variance(spectrum, 0.9),
            "twonn": twonn_dimension(features),
            "purity": clustering_purity(features, labels, clusters, seed)[0],
            "width": int(features.shape[1])}


def make_geometry(ctx):
    from mechinterp.activations import layer_features, representation_layers
    from mechinterp.representations.geometry import clustering_purity, twonn_dimension
    data = ctx.counted_dataset("test", "images")
    labels, classes = data.labels.numpy(), len(data.class_names)
    numbers, inputs = {"images": len(labels), "clusters": classes, "models": {}}, None
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    pixel_features = data.images.flatten(1)
    pixel_purity = clustering_purity(pixel_features, labels, classes, ctx.seed)[0]
    pixel_dimension = twonn_dimension(pixel_features)
    for name in declared(ctx):
        model = ctx.model(name)
        inputs = inputs or input_name(model)      # the first model's: "pixels" or "inputs"
        layers = representation_layers(model)
        features = layer_features(model, data.images, layers, pool=4)
        rows = {layer: layer_geometry(features[layer], labels, classes, ctx.seed) for layer in layers}
        numbers["models"][model_label(name)] = rows
        depth = np.linspace(0, 1, len(layers))
        axes[0].plot(depth, [rows[l]["twonn"] for l in layers], "o-", label=model_label(name))
        axes[1].plot(depth, [rows[l]["purity"] for l in layers], "o-", label=model_label(name))
    label_geometry(axes, pixel_dimension, pixel_purity, classes, inputs)
    fig.tight_layout()
    ctx.save(fig)
    numbers["pixel_purity"] = pixel_purity     # the raw inputs' (`inputs`: pixels or vectors)
    numbers["pixel_twonn"], numbers["inputs"] = pixel_dimension, inputs
    return numbers


def label_geometry(axes, pixel_dimension, pixel_purity, classes, inputs):
    """The input ("pixels" or "inputs") and chance references and the labels of the two panels."""
    axes[0].axhline(pixel_dimension, color="black", linewidth=1.5, label=inputs)
    axes[0].set_ylabel("estimated dimension")
    axes[1].axhline(pixel_purity, color="black", linewidth=1.5, label=inputs)
    axes[1].axhline(1 / classes, color="#999999", linestyle=":", label="chance")
    axes[0].set_title("intrinsic dimension (TwoNN)")
    axes[1].set_title(f"k-means purity ({classes} clusters)")
    for axis in axes:
        axis.set_xlabel("relative depth (first layer → logits)")
    axes[1].set_ylim(0, 1.05)
    legend_outside(axes[1], fontsize=12)
