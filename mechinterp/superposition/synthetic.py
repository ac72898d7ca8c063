"""Activations built from a known sparse dictionary: the ground truth an SAE should recover.

    data = SparseDictionary(n_features=48, d=16, feature_probability=0.04, seed=0)
    x = data.sample(4096)                  # (4096, 16): sparse non-negative mixtures of directions
    stream = data.stream(batch_size=1024)  # endless batches for sae_training.train_sae

Each vector is Σ_i f_i d_i over random unit directions d_i (more directions than dimensions:
superposition), where each coefficient f_i is zero with probability 1 - p and otherwise uniform
on [0, 1], like the toy models' features.
"""
from __future__ import annotations

from typing import Iterator

import torch


class SparseDictionary:
    def __init__(self, n_features: int, d: int, feature_probability: float, seed: int = 0,
                 device=None):
        self.generator = torch.Generator().manual_seed(seed)
        directions = torch.randn(n_features, d, generator=self.generator)
        self.directions = (directions / directions.norm(dim=1, keepdim=True)).to(device)
        self.feature_probability = feature_probability

    def coefficients(self, n: int) -> torch.Tensor:
        shape = (n, self.directions.shape[0])
        values = torch.rand(shape, generator=self.generator)
        present = torch.rand(shape, generator=self.generator) < self.feature_probability
        return (values * present).to(self.directions.device)

    def sample(self, n: int) -> torch.Tensor:
        return self.coefficients(n) @ self.directions

    def stream(self, batch_size: int) -> Iterator[torch.Tensor]:
        while True:
            yield self.sample(batch_size)
