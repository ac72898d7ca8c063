"""Benchmark representation similarity: linear CKA at scale, layer matrices, streamed vs in memory.

    .venv/bin/python -m bench.bench_universality        # writes bench/results/universality.json

1. Linear CKA of two 10,000 x 512 activation matrices (float64, feature-space formula), against
   the textbook HSIC formula tr(K H L H) with explicit N x N centring matrices at N = 1,000.
2. The same 10,000 x 512 CKA streamed in batches of 500 (StreamingLinearCKA, memory O(D^2)):
   time, the largest difference from the in-memory value, and the memory each one holds.
3. The whole layer-by-layer linear-CKA matrix of two zoo models (shapes-cnn-a and
   shapes-cnn-deep, every ReLU layer and the logits) on 1,000 test images: flattened features
   with each model's Gram matrices built once, and on 4 x 4-pooled features in memory against
   streamed through both models in batches.

Timings are medians of alternated repeats (the machine is noisy; the ratios are what count).
The zoo models are used when trained (models/), else the same architectures untrained.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench.common import alternate, median_seconds, write_results
from mechinterp.device import keep_freed_memory, pick_device, seed_everything
from mechinterp.activations import layer_features, representation_layers
from mechinterp.representations.similarity import (StreamingLinearCKA, as_layers, linear_cka,
                                                   similarity_matrix, streamed_cka_matrix)

REPEATS = 3
ROWS, WIDTH = 10_000, 512
NAIVE_ROWS = 1_000
STREAM_BATCH = 500
MATRIX_IMAGES = 1_000


def activations_like(rows, width, device, seed=0):
    """Two related ReLU-like activation matrices (a random layer of another)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.relu(torch.randn(rows, width, generator=generator))
    y = torch.relu(x @ torch.randn(width, width, generator=generator) / width ** 0.5
                   + 0.5 * torch.randn(rows, width, generator=generator))
    return x.to(device), y.to(device)


def naive_hsic_cka(x, y) -> float:
    """The textbook formula with explicit centring matrices: O(N^3) time, O(N^2) memory."""
    x, y = x.double(), y.double()
    n = len(x)
    h = torch.eye(n, dtype=torch.float64, device=x.device) - 1.0 / n
    k, l = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return float((k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum()))


def streamed(x, y) -> float:
    streaming = StreamingLinearCKA([("x", "y")])
    for start in range(0, len(x), STREAM_BATCH):
        streaming.update({"x": x[start:start + STREAM_BATCH], "y": y[start:start + STREAM_BATCH]})
    return streaming.cka("x", "y")


def bench_linear_cka(device) -> dict:
    x, y = activations_like(ROWS, WIDTH, device)
    in_memory_value, streamed_value = linear_cka(x, y), streamed(x, y)
    in_memory_s, streamed_s = alternate(lambda: linear_cka(x, y), lambda: streamed(x, y), REPEATS)
    small_x, small_y = x[:NAIVE_ROWS], y[:NAIVE_ROWS]
    assert abs(naive_hsic_cka(small_x, small_y) - linear_cka(small_x, small_y)) < 1e-10
    naive_s, fast_s = alternate(lambda: naive_hsic_cka(small_x, small_y),
                                lambda: linear_cka(small_x, small_y), REPEATS)
    return {
        "linear_cka_10000x512_s": {"value": in_memory_s, "unit": "s"},
        "streamed_cka_10000x512_s": {"value": streamed_s, "unit": "s"},
        "streamed_over_in_memory": {"value": streamed_s / in_memory_s, "unit": "x"},
        "streamed_minus_in_memory_abs": {"value": abs(streamed_value - in_memory_value), "unit": ""},
        "in_memory_float64_mb": {"value": 2 * ROWS * WIDTH * 8 / 2 ** 20, "unit": "MiB"},
        "streamed_state_mb": {"value": 3 * WIDTH * WIDTH * 8 / 2 ** 20, "unit": "MiB"},
        "naive_hsic_formula_1000x512_s": {"value": naive_s, "unit": "s"},
        "linear_cka_1000x512_s": {"value": fast_s, "unit": "s"},
        "naive_over_linear_cka": {"value": naive_s / fast_s, "unit": "x"},
    }


def zoo_models(device):
    """shapes-cnn-a and shapes-cnn-deep, trained if the zoo has them."""
    from mechinterp.models.architectures import DeepCNN, SmallCNN
    if all((Path("models") / name).exists() for name in ("shapes-cnn-a", "shapes-cnn-deep")):
        from mechinterp.models.zoo import load_model
        names = ("shapes-cnn-a", "shapes-cnn-deep")
        return [load_model(name, "models", device=device) for name in names], "trained"
    seed_everything(0)
    return [SmallCNN().to(device).eval(), DeepCNN().to(device).eval()], "untrained"


def in_memory_matrix(model_a, model_b, images, pool):
    layers_a, layers_b = representation_layers(model_a), representation_layers(model_b)
    features_a = as_layers(layer_features(model_a, images, layers_a, pool=pool))
    features_b = as_layers(layer_features(model_b, images, layers_b, pool=pool))
    return similarity_matrix(features_a, features_b, "linear_cka")


def bench_layer_matrix(device) -> tuple[dict, str]:
    (model_a, model_b), state = zoo_models(device)
    from mechinterp.data import load_dataset
    images = load_dataset("shapes", "test", count=MATRIX_IMAGES).images
    layers_a, layers_b = representation_layers(model_a), representation_layers(model_b)
    flattened_s = median_seconds(lambda: in_memory_matrix(model_a, model_b, images, None), REPEATS)
    pooled = in_memory_matrix(model_a, model_b, images, 4)
    streamed_matrix = streamed_cka_matrix(model_a, model_b, images, layers_a, layers_b, 250, pool=4)
    pooled_s, streamed_s = alternate(
        lambda: in_memory_matrix(model_a, model_b, images, 4),
        lambda: streamed_cka_matrix(model_a, model_b, images, layers_a, layers_b, 250, pool=4), REPEATS)
    cells = len(layers_a) * len(layers_b)
    return {
        "layer_matrix_cells": {"value": cells, "unit": "pairs"},
        "layer_matrix_flattened_1000_images_s": {"value": flattened_s, "unit": "s"},
        "layer_matrix_pooled_in_memory_s": {"value": pooled_s, "unit": "s"},
        "layer_matrix_pooled_streamed_s": {"value": streamed_s, "unit": "s"},
        "layer_matrix_streamed_minus_in_memory_max_abs": {
            "value": float((streamed_matrix - pooled).abs().max()), "unit": ""},
    }, state


def main() -> None:
    keep_freed_memory()                  # as the figure workers run
    device = pick_device()
    seed_everything(0)
    figures = bench_linear_cka(device)
    matrix_figures, state = bench_layer_matrix(device)
    figures.update(matrix_figures)
    print(f"device {device}; zoo models {state}; torch threads {torch.get_num_threads()}")
    write_results("universality", figures)


if __name__ == "__main__":
    main()
