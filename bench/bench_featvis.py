"""Benchmark feature visualisation: a whole layer in one batched render against one unit at a time.

    .venv/bin/python -m bench.bench_featvis              # writes bench/results/featvis.json
    .venv/bin/python -m bench.bench_featvis --threads 1  # bench/results/featvis-1-thread.json
    python3 -m bench.bench_featvis                       # on a GPU: bench/results/featvis-cuda.json

1. Every channel of each layer of shapes-cnn-a with 32 or more channels (conv2: 32, conv3: 64),
   rendered as one batch (image i maximises channel i) and as separate renders with the same seeds
   (the results are the same images); both with the full recipe (Fourier parameterisation,
   decorrelated colour, Lucid's transforms). Torch uses its default thread count (all cores), or
   `--threads N` (1 is what each figure worker gets from `make figures` when JOBS is the core count).
   The speedup is the median of each round's own ratio (one batched and one sequential run a round).
2. Seconds per render step against one bare forward + backward pass of the same batch: the
   overhead of parameterisation, transforms, objective and optimiser. A step is the time a
   longer render adds per step; the once-per-render set-up is reported apart, amortised over a
   16-step render.
3. Steps per second at 128 px for a layer of 256 channels (SmallCNN of width 64), all 256 images
   in one batch: the GPU figure the issue asks for when CUDA is there, else the same on the CPU.
   For scale, Lucent's notebooks report about 30 s per channel for 512 steps of InceptionV1 on a
   Colab GPU (a larger model; not a like-for-like comparison).
4. Why batching gains less than the channel count on the CPU: the first conv's input gradient
   (what every step needs to reach the pixels) against its forward, per image, at batch 1 and at
   the batch of conv2's channels. It has 3 output channels, and oneDNN computes it in blocks of 16
   channels, so it costs several forwards and gains little from a larger batch.

The model is the zoo's shapes-cnn-a when it has been trained (models/), else the same
architecture untrained: the cost of a step does not depend on the weights. The load average
before and after is recorded with the figures: on a shared machine the ratios move with it.
"""
from __future__ import annotations

import argparse
import os
import statistics

import torch

from bench.common import alternate_all, alternate_rounds, median_seconds, reference_cnn, write_results
from mechinterp.device import keep_freed_memory, model_device, pick_device, seed_everything
from mechinterp.featvis import objectives as obj
from mechinterp.featvis.render import model_memory_format, render

STEPS = 16
REPEATS = 3


def batched_against_sequential(model, layer: str, channels: int) -> dict:
    """Seconds for every channel of `layer` in one render and in `channels` renders, and the ratio."""
    goal = obj.channel(layer, range(channels))
    batched, one_by_one = alternate_rounds(
        [lambda: render(model, goal, steps=STEPS, seed=0, progress=False),
         lambda: [render(model, obj.channel(layer, [c]), steps=STEPS, seed=c, progress=False)
                  for c in range(channels)]], repeats=2 * REPEATS)
    return {f"{layer} channels": {"value": channels, "unit": "channels"},
            f"{layer} batched_seconds": {"value": statistics.median(batched), "unit": "s"},
            f"{layer} one_at_a_time_seconds": {"value": statistics.median(one_by_one), "unit": "s"},
            f"{layer} batched_speedup": {"value": median_round_ratio(one_by_one, batched), "unit": "x"},
            f"{layer} batched_seconds_per_channel_step": {"value": statistics.median(batched) / (channels * STEPS),
                                                          "unit": "s"}}


def median_round_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of each round's own ratio: the machine's load changes between rounds."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def step_overhead(model, layer: str, channels: int, image_size: int = 32) -> dict:
    """Seconds of one render step against a bare forward + backward of the same batch.

    A step is what a longer render adds per step: (render of 3 * STEPS steps - render of STEPS
    steps) / (2 * STEPS), so the once-per-render work (the seeded start images, the layout trial,
    the final scoring) is left out; the amortised cost of a STEPS-step render is reported beside it."""
    device = model_device(model)
    shape = (3, image_size, image_size)
    goal = obj.channel(layer, range(channels))
    images = torch.rand(channels, *shape, device=device)
    # the layout render feeds the model (channels_last on the CPU), so the comparison is like for like
    memory_format = model_memory_format(model, images, None, None)
    images = images.contiguous(memory_format=memory_format).requires_grad_()

    def forward_backward():
        for _ in range(2 * STEPS):
            model(images).sum().backward(inputs=[images])

    def rendering(steps):
        return lambda: render(model, goal, steps=steps, image_shape=shape, progress=False)
    rounds = alternate_rounds([rendering(STEPS), rendering(3 * STEPS), forward_backward], repeats=4 * REPEATS)
    per_step = [(long - short) / (2 * STEPS) for short, long in zip(rounds[0], rounds[1])]
    bare = [seconds / (2 * STEPS) for seconds in rounds[2]]
    short = [seconds / STEPS for seconds in rounds[0]]
    return {"seconds_per_step": {"value": statistics.median(per_step), "unit": "s"},
            "forward_backward_seconds": {"value": statistics.median(bare), "unit": "s"},
            "step_over_forward_backward": {"value": median_round_ratio(per_step, bare), "unit": "x"},
            f"render_{STEPS}_steps_seconds_per_step": {"value": statistics.median(short), "unit": "s"},
            f"render_{STEPS}_steps_over_forward_backward": {"value": median_round_ratio(short, bare), "unit": "x"}}


def large_layer_steps_per_second(device) -> dict:
    """Steps per second for all 256 channels of a 128 px model in one batch (64 steps on a GPU; on
    the CPU 2 steps, enough for the rate and a check that the configuration runs at all)."""
    from mechinterp.models.architectures import SmallCNN
    seed_everything(0)
    model = SmallCNN(classes=8, width=64).to(device).eval()       # conv3 has 256 channels
    goal = obj.channel("conv3", range(256))
    shape, steps = (3, 128, 128), (64 if device.type == "cuda" else 2)
    if device.type == "cuda":                                        # warm-up (kernel selection)
        render(model, goal, steps=1, image_shape=shape, progress=False)
    seconds = median_seconds(lambda: render(model, goal, steps=steps, image_shape=shape, progress=False), 1)
    return {f"{device.type}_steps_per_second_128px_256_channels": {"value": steps / seconds, "unit": "steps/s"},
            f"{device.type}_seconds_per_channel_512_steps": {"value": seconds / steps * 512 / 256, "unit": "s"}}


def first_conv_input_gradient(model, batch: int) -> dict:
    """Per-image seconds of the first conv's forward and of its input gradient (torch's
    convolution_backward for the input alone), at batch 1 and at `batch`, in the render's layout."""
    conv = dict(model.named_modules())[model.conv_layers[0]]
    figures = {}
    for size in (1, batch):
        images = torch.rand(size, *model.input_shape, device=model_device(model))
        images = images.contiguous(memory_format=model_memory_format(model, images, None, None))
        with torch.no_grad():
            output = conv(images)
        arguments = (output, images, conv.weight, None, conv.stride, conv.padding, conv.dilation, False,
                     [0, 0], conv.groups, [True, False, False])
        forward, gradient = alternate_all([lambda: conv(images),
                                           lambda: torch.ops.aten.convolution_backward(*arguments)],
                                          repeats=50)
        figures[f"first_conv_forward_seconds_per_image_batch_{size}"] = {"value": forward / size, "unit": "s"}
        figures[f"first_conv_input_gradient_seconds_per_image_batch_{size}"] = {"value": gradient / size,
                                                                                "unit": "s"}
        figures[f"first_conv_input_gradient_over_forward_batch_{size}"] = {"value": gradient / forward,
                                                                           "unit": "x"}
    return figures


def main(argv=None) -> None:
    keep_freed_memory()                  # as the figure workers run
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    threads = parser.parse_args(argv).threads
    if threads:
        torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    device = pick_device()
    model, described = reference_cnn(device)
    print(f"model: {described} on {device}")
    modules = dict(model.named_modules())
    last = model.conv_layers[-1]
    figures = step_overhead(model, last, modules[last].out_channels)
    for layer in model.conv_layers:                      # the case: layers of 32 or more channels
        if modules[layer].out_channels >= 32:
            figures.update(batched_against_sequential(model, layer, modules[layer].out_channels))
    figures.update(first_conv_input_gradient(model, modules[model.conv_layers[1]].out_channels))
    figures.update(large_layer_steps_per_second(device))
    figures["torch_threads"] = {"value": torch.get_num_threads(), "unit": "threads"}
    figures["load_average_before"] = {"value": load_before, "unit": ""}
    figures["load_average_after"] = {"value": os.getloadavg()[0], "unit": ""}
    # one thread is how `make figures` runs each figure when JOBS is the core count
    name = "featvis" + (f"-{device.type}" if device.type != "cpu" else "") + (f"-{threads}-thread" if threads else "")
    write_results(name, figures)


if __name__ == "__main__":
    main()
