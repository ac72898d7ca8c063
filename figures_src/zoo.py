"""Figures about the zoo itself: what every CNN's first layer learned, and how well each model does.

zoo/first-layer-filters is the pipeline's first end-to-end figure: the first conv layer's kernels
of the first declared model (the repo's: a CNN trained here on procedural shapes), shown as
images (Gabor-like edges and colour contrasts appear, as in every vision model). zoo/accuracy
states the held-out accuracy of each declared model, which the deck quotes through <Measured>.
"""
import matplotlib.pyplot as plt
import numpy as np

FIGURES = {
    "zoo/first-layer-filters": {
        "make": "make_first_layer_filters",
        "models": ["shapes-cnn-a"],
        "params": {"columns": 8},
        "outputs": ["png"],
    },
    "zoo/accuracy": {
        "make": "make_accuracy",
        "models": ["digits-mlp", "shapes-cnn-a", "shapes-cnn-a-seed1", "shapes-cnn-wide", "shapes-cnn-deep"],
        "outputs": ["png"],
    },
}


def make_first_layer_filters(ctx):
    from mechinterp.universality.filters import filters_as_images
    name = ctx.declared_models[0]
    model = ctx.model(name)
    conv = dict(model.named_modules())[ctx.conv_layers(model)[0]]
    weight = conv.weight.detach().cpu().numpy()
    images = filters_as_images(weight)
    columns = ctx.params["columns"]
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.4))
    for index, axis in enumerate(np.ravel(axes)):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], interpolation="nearest")
    fig.suptitle(f"{name} · {model.conv_layers[0]}: {len(images)} learned {weight.shape[2]}×{weight.shape[3]} filters")
    ctx.save(fig)
    norms = np.linalg.norm(weight.reshape(len(weight), -1), axis=1)
    return {"layer": model.conv_layers[0], "filters": int(len(images)), "kernel_size": list(weight.shape[2:]),
            "filter_norms": norms.round(4).tolist()}


def make_accuracy(ctx):
    names = list(dict.fromkeys(ctx.declared_models))
    metas = {name: ctx.model_meta(name) for name in names}
    accuracies = [metas[n]["metrics"]["test_accuracy"] for n in names]
    fig, axis = plt.subplots(figsize=(10, 4.5))
    bars = axis.barh(names, [100 * a for a in accuracies], color="#0072B2")
    axis.bar_label(bars, labels=[f"{100 * a:.1f}%" for a in accuracies], padding=6)
    axis.set_xlim(0, 112)
    axis.invert_yaxis()
    axis.set_xlabel("held-out accuracy (%)")
    axis.set_title("Held-out accuracy of each model")
    ctx.save(fig)
    return {"models": {n: {"test_accuracy": metas[n]["metrics"]["test_accuracy"],
                           "train_seconds": metas[n].get("train_seconds"),
                           "dataset": metas[n]["config"].get("dataset")} for n in names}}
