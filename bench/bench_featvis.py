"""Benchmark feature visualisation: a whole layer in one batched render against one unit at a time.

    .venv/bin/python -m bench.bench_featvis            # writes bench/results/featvis.json

1. Every channel of shapes-cnn-a's conv3 (64 channels), rendered as one batch (image i maximises
   channel i) and as 64 separate renders with the same seeds (the results are the same images);
   both with the full recipe (Fourier parameterisation, decorrelated colour, Lucid's transforms).
2. Seconds per render step against one bare forward + backward pass of the same batch: the
   overhead of parameterisation, transforms, objective and optimiser.
3. With CUDA only: steps per second at 128 px for a layer of 256 channels (SmallCNN of width 64),
   all 256 images in one batch. For scale, Lucent's notebooks report about 30 s per channel for
   512 steps of InceptionV1 on a Colab GPU (a larger model; not a like-for-like comparison).

The model is the zoo's shapes-cnn-a when it has been trained (models/), else the same
architecture untrained: the cost of a step does not depend on the weights.
"""
from __future__ import annotations

import statistics
import time

import torch

from bench.common import reference_cnn, write_results
from mechinterp.device import pick_device, seed_everything
from mechinterp.featvis import objectives as obj
from mechinterp.featvis.render import render

STEPS = 16
REPEATS = 3



def timed(function) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def alternate(first, second) -> tuple[float, float]:
    """Median seconds of two functions timed alternately, so both see the same machine load."""
    first(), second()                                                      # warm-up
    times = [(timed(first), timed(second)) for _ in range(REPEATS)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def batched_against_sequential(model, layer: str, channels: int) -> dict:
    goal = obj.channel(layer, range(channels))
    batched, one_by_one = alternate(
        lambda: render(model, goal, steps=STEPS, seed=0, progress=False),
        lambda: [render(model, obj.channel(layer, [c]), steps=STEPS, seed=c, progress=False)
                 for c in range(channels)])
    return {"channels": {"value": channels, "unit": "channels"},
            "batched_seconds": {"value": batched, "unit": "s"},
            "one_at_a_time_seconds": {"value": one_by_one, "unit": "s"},
            "batched_speedup": {"value": one_by_one / batched, "unit": "x"},
            "batched_seconds_per_channel_step": {"value": batched / (channels * STEPS), "unit": "s"}}


def step_overhead(model, layer: str, channels: int, image_size: int = 32) -> dict:
    """Render seconds per step against a bare forward + backward of the same batch."""
    device = next(model.parameters()).device
    shape = (3, image_size, image_size)
    goal = obj.channel(layer, range(channels))
    images = torch.rand(channels, *shape, device=device, requires_grad=True)

    def forward_backward():
        for _ in range(STEPS):
            model(images).sum().backward(inputs=[images])
    rendering, bare = alternate(lambda: render(model, goal, steps=STEPS, image_shape=shape, progress=False),
                                forward_backward)
    per_step, bare = rendering / STEPS, bare / STEPS
    return {"seconds_per_step": {"value": per_step, "unit": "s"},
            "forward_backward_seconds": {"value": bare, "unit": "s"},
            "step_over_forward_backward": {"value": per_step / bare, "unit": "x"}}


def gpu_steps_per_second(device) -> dict:
    from mechinterp.models.architectures import SmallCNN
    seed_everything(0)
    model = SmallCNN(classes=8, width=64).to(device).eval()       # conv3 has 256 channels
    goal = obj.channel("conv3", range(256))
    shape = (3, 128, 128)
    render(model, goal, steps=2, image_shape=shape, progress=False)  # warm-up
    seconds = timed(lambda: render(model, goal, steps=64, image_shape=shape, progress=False))
    return {"gpu_steps_per_second_128px_256_channels": {"value": 64 / seconds, "unit": "steps/s"},
            "gpu_seconds_per_channel_512_steps": {"value": seconds / 64 * 512 / 256, "unit": "s"}}


def main() -> None:
    device = pick_device()
    model, described = reference_cnn(device)
    print(f"model: {described} on {device}")
    layer = model.conv_layers[-1]
    channels = dict(model.named_modules())[layer].out_channels
    figures = {**batched_against_sequential(model, layer, channels), **step_overhead(model, layer, channels)}
    if device.type == "cuda":
        figures.update(gpu_steps_per_second(device))
    write_results("featvis", figures)


if __name__ == "__main__":
    main()
