"""Benchmark the feature-visualisation transforms against the same chain in torchvision.transforms.v2.

    .venv/bin/python -m bench.bench_transforms          # writes bench/results/transforms.json

Ours (mechinterp.featvis.transforms.standard_transforms): pad, jitter, scale, rotate, jitter as
one affine map per image and one grid_sample for the batch, each image with its own seeded
random numbers. v2's Pad, RandomCrop, RandomAffine, RandomCrop draw one set of parameters per call,
so per-image transforms take one call per image, each resampling in turn. Both are timed forward
and backward (the render differentiates through them) on a batch of 64 images of 32x32, with one
torch thread (what each figure worker gets), alternately so both see the same machine load.
"""
from __future__ import annotations

import os

import torch
from torchvision.transforms import v2

from bench.common import alternate, write_results
from mechinterp.featvis.transforms import PerImageRandom, standard_transforms

BATCH, SIZE, PAD = 64, 32, 8


def torchvision_chain() -> v2.Compose:
    """The closest v2 chain to ours: Lucid's pad, jitter, scale 0.9-1.1, rotate +-10 degrees, jitter."""
    return v2.Compose([v2.Pad(PAD, fill=0.5), v2.RandomCrop(SIZE + 2 * PAD - 4),
                       v2.RandomAffine(degrees=10, scale=(0.9, 1.1), fill=0.5), v2.RandomCrop(SIZE)])


def main() -> None:
    torch.set_num_threads(1)
    images = torch.rand(BATCH, 3, SIZE, SIZE, requires_grad=True)
    ours, theirs = standard_transforms(SIZE), torchvision_chain()

    def run_ours():
        ours(images, PerImageRandom(range(BATCH))).sum().backward()

    def run_theirs():
        torch.stack([theirs(image) for image in images]).sum().backward()

    ours_seconds, theirs_seconds = alternate(run_ours, run_theirs, repeats=7)
    write_results("transforms", {
        "ours_ms_per_batch": {"value": ours_seconds * 1000, "unit": "ms"},
        "torchvision_v2_ms_per_batch": {"value": theirs_seconds * 1000, "unit": "ms"},
        "speedup": {"value": theirs_seconds / ours_seconds, "unit": "x"},
        "batch": {"value": BATCH, "unit": f"images of {SIZE}x{SIZE}"},
        "load_average": {"value": os.getloadavg()[0], "unit": "1-min"},
    })


if __name__ == "__main__":
    main()
