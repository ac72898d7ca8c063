"""Toy models of superposition (Elhage et al. 2022), many instances trained as one tensor program.

Each instance is a tiny autoencoder with tied weights that squeezes n sparse features into m
hidden dimensions and reads them back out:

    h  = W x                      (the paper's W is m x n; here W[instance, feature, hidden])
    x' = ReLU(Wᵀh + b)            nonlinearity="relu"   (the model that shows superposition)
    x' = WᵀW x + b                nonlinearity="linear" (the baseline that never does)

A feature is zero with probability S (its sparsity) and otherwise uniform on [0, 1]; the loss
is the importance-weighted squared error  Σ_i I_i (x_i - x'_i)².  Every tensor carries a leading
instances dimension, so a sweep over sparsity and importance, or several seeds of one setting,
trains in a single loop with no Python loop over instances, on CPU or CUDA. Inputs are laid out
(instances, features, batch): with the batch last and contiguous, each instance's matrix
products are long and thin, 7 to 14 times faster on a CPU than with the batch in the middle.

    spec = ToyModelSpec(n_features=5, n_hidden=2,
                        feature_probability=torch.tensor([1.0, 0.1]),   # 1 - S, one per instance
                        importance=0.9 ** torch.arange(5.0))            # one per feature
    model = ToyModel(spec, seed=0, device="cpu")
    final_loss = train_toy_models(model, steps=5_000, seed=0)          # (instances,)

Training follows Anthropic's toy-models notebook: AdamW at lr 1e-3, batches of 1024 drawn
fresh every step, loss averaged over batch and features per instance and summed over instances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import trange

from mechinterp.data.vectors import sample_features   # the one sampler of sparse features

NONLINEARITIES = ("relu", "linear")


@dataclass
class ToyModelSpec:
    """What every instance computes and sees.

    feature_probability is 1 - S: shape (instances,) for one value per instance, or
    (instances, features). importance is (features,) for all instances alike, or
    (instances, features). Both are expanded to (instances, features)."""
    n_features: int
    n_hidden: int
    feature_probability: torch.Tensor
    importance: torch.Tensor
    nonlinearity: str = "relu"

    def __post_init__(self):
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity {self.nonlinearity!r}: use one of {NONLINEARITIES}")
        probability = torch.as_tensor(self.feature_probability, dtype=torch.float32)
        importance = torch.as_tensor(self.importance, dtype=torch.float32)
        probability = probability[:, None] if probability.dim() == 1 else probability
        importance = importance[None, :] if importance.dim() == 1 else importance
        if probability.dim() != 2 or importance.dim() != 2:
            raise ValueError("feature_probability and importance must be 1-D or 2-D tensors")
        if not bool(((probability > 0) & (probability <= 1)).all()):
            raise ValueError("feature_probability (1 - sparsity) must lie in (0, 1]")
        n_instances = max(probability.shape[0], importance.shape[0])
        self.feature_probability = probability.expand(n_instances, self.n_features).clone()
        self.importance = importance.expand(n_instances, self.n_features).clone()

    @property
    def n_instances(self) -> int:
        return self.feature_probability.shape[0]


class ToyModel(nn.Module):
    """n_instances independent tied-weight autoencoders held in two batched parameters."""

    def __init__(self, spec: ToyModelSpec, seed: int = 0, device=None):
        super().__init__()
        self.spec = spec
        generator = torch.Generator().manual_seed(seed)
        # Xavier-normal scale of one n x m matrix. (The notebook applies xavier_normal_ to the
        # whole 3-D tensor, which makes the scale shrink as more instances train together.)
        std = math.sqrt(2.0 / (spec.n_features + spec.n_hidden))
        shape = (spec.n_instances, spec.n_features, spec.n_hidden)
        self.W = nn.Parameter((torch.randn(shape, generator=generator) * std).to(device))
        self.b = nn.Parameter(torch.zeros(spec.n_instances, spec.n_features, device=device))
        self.register_buffer("feature_probability", spec.feature_probability.to(device))
        self.register_buffer("importance", spec.importance.to(device))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """h = W x for every instance: (instances, features, batch) -> (instances, hidden, batch)."""
        return torch.bmm(self.W.transpose(1, 2), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x' for every instance: (instances, features, batch) -> (instances, features, batch)."""
        out = torch.baddbmm(self.b[:, :, None], self.W, self.hidden(x))
        return torch.relu(out) if self.spec.nonlinearity == "relu" else out


def instance_losses(model: ToyModel, x: torch.Tensor) -> torch.Tensor:
    """Importance-weighted squared error per instance, averaged over batch and features."""
    error = model.importance[:, :, None] * (x - model(x)) ** 2
    return error.mean(dim=(1, 2))


def learning_rate_scale(schedule: str, step: int, steps: int) -> float:
    """The notebook's schedules: constant, linear decay to 0, cosine decay to 0."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - step / steps
    if schedule == "cosine":
        return math.cos(0.5 * math.pi * step / max(steps - 1, 1))
    raise ValueError(f"lr schedule {schedule!r}: use constant, linear or cosine")


def train_toy_models(model: ToyModel, steps: int = 10_000, batch_size: int = 1024,
                     lr: float = 1e-3, lr_schedule: str = "constant", seed: int = 0,
                     shared_inputs: bool = True, progress: bool = False) -> torch.Tensor:
    """Train every instance at once; return each instance's loss averaged over the last 100 steps.

    shared_inputs: every instance's batch comes from the same uniform draws (see sample_features)."""
    generator = torch.Generator(device=model.W.device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    recent = torch.zeros(model.spec.n_instances, device=model.W.device)
    window = min(100, steps)
    for step in trange(steps, disable=not progress, desc="toy models", leave=False):
        for group in optimizer.param_groups:
            group["lr"] = lr * learning_rate_scale(lr_schedule, step, steps)
        x = sample_features(batch_size, model.feature_probability, generator, shared_inputs)
        losses = instance_losses(model, x)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        if step >= steps - window:
            recent += losses.detach() / window
    return recent
