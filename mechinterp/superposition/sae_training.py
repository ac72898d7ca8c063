"""Train a sparse autoencoder on a stream of activation batches, keeping latents alive.

    stream = activation_stream(model, "relu2", images, images_per_batch=64)   # activations.py
    stream = row_batches(vectors, size=256, seed=0)       # rows that already fit in memory
    log = train_sae(sae, stream, steps=2_000, lr=1e-3, resample_every=500)
    log.dead_fraction, log.vectors_per_second

Batches come from any iterator of (vectors, d_in) tensors, so activations never need to fit in
memory at once. The first batch fixes the SAE's input scale and decoder bias. Every step counts,
per latent, the vectors seen since it last fired; a latent silent for `dead_after` vectors is dead.

Dead latents are handled the way each paper does: a TopKSAE trains them through its AuxK loss
(Gao et al. 2024); a ReluSAE has them resampled every `resample_every` steps (Bricken et al.
2023): each dead latent is pointed at an input the SAE reconstructs badly (drawn with probability
proportional to its squared error), its encoder row scaled to 0.2 x the mean alive encoder norm,
its bias zeroed and its Adam moments reset.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
from tqdm.auto import trange

from mechinterp.superposition.sae import ReluSAE, SparseAutoencoder


@dataclass
class TrainingLog:
    steps: int = 0
    vectors_seen: int = 0
    seconds: float = 0.0
    resampled: int = 0                       # latents resampled, in total
    # ‖x - x̂‖² / s² (sae.scaled_squared_error), every log_every steps: not sae_metrics' "mse",
    # the mean squared error per element in the vectors' own units
    scaled_error: list[float] = field(default_factory=list)
    l0: list[float] = field(default_factory=list)    # active latents per vector, same steps
    dead_fraction: float = 0.0               # at the end of training

    @property
    def vectors_per_second(self) -> float:
        return self.vectors_seen / max(self.seconds, 1e-9)


@torch.no_grad()
def update_activity(sae: SparseAutoencoder, latents: torch.Tensor) -> None:
    """Count vectors since each latent last fired."""
    fired = (latents > 0).any(dim=0)
    sae.vectors_since_active += len(latents)
    sae.vectors_since_active[fired] = 0


def dead_mask(sae: SparseAutoencoder, dead_after: int) -> torch.Tensor:
    return sae.vectors_since_active >= dead_after


def _reset_adam_state(optimizer: torch.optim.Optimizer, parameter, index, dim: int) -> None:
    state = optimizer.state.get(parameter, {})
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key].index_fill_(dim, index, 0.0)


@torch.no_grad()
def resample_dead_latents(sae: ReluSAE, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                          dead_after: int) -> int:
    """Point dead latents at badly reconstructed inputs of batch x (Bricken et al. 2023)."""
    dead = dead_mask(sae, dead_after).nonzero().flatten()
    if len(dead) == 0:
        return 0
    reconstruction, _ = sae(x)
    error = ((x - reconstruction) / sae.input_scale).pow(2).sum(-1)
    chosen = torch.multinomial(error / error.sum() + 1e-12, len(dead), replacement=True)
    directions = x[chosen] / sae.input_scale - sae.b_dec
    directions /= directions.norm(dim=1, keepdim=True).clamp_min(1e-8)
    alive = ~dead_mask(sae, dead_after)
    encoder_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    sae.W_dec[dead] = directions
    sae.W_enc[:, dead] = directions.T * 0.2 * encoder_norm
    sae.b_enc[dead] = 0.0
    _reset_adam_state(optimizer, sae.W_dec, dead, 0)
    _reset_adam_state(optimizer, sae.W_enc, dead, 1)
    _reset_adam_state(optimizer, sae.b_enc, dead, 0)
    sae.vectors_since_active[dead] = 0
    return len(dead)


def train_step(sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> dict:
    """One gradient step; returns the losses (and latents) of the batch."""
    losses = sae.losses(x)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    sae.before_step()
    optimizer.step()
    sae.after_step()
    update_activity(sae, losses["latents"])
    return losses


def train_sae(sae: SparseAutoencoder, batches: Iterator[torch.Tensor], steps: int,
              lr: float = 1e-3, resample_every: int | None = None, dead_after: int | None = None,
              log_every: int = 50, progress: bool = False) -> TrainingLog:
    """Train on `steps` batches from the iterator; ReluSAEs resample dead latents if asked.

    dead_after defaults to the TopKSAE's own setting, else 10 batches' worth of vectors."""
    first = next(batches)
    sae.set_input_scale(first)
    dead_after = dead_after or getattr(sae, "dead_after", None) or 10 * len(first)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    log, start = TrainingLog(), time.perf_counter()
    for step in trange(steps, disable=not progress, desc="SAE", leave=False):
        x = first if step == 0 else next(batches)
        losses = train_step(sae, optimizer, x)
        log.vectors_seen += len(x)
        if step % log_every == 0 or step == steps - 1:
            log.scaled_error.append(float(losses["scaled_error"].detach()))
            log.l0.append(float((losses["latents"] > 0).float().sum(-1).mean()))
        late = step >= 0.8 * steps   # let resampled latents settle before the end
        if isinstance(sae, ReluSAE) and resample_every and (step + 1) % resample_every == 0 and not late:
            log.resampled += resample_dead_latents(sae, optimizer, x, dead_after)
    log.steps, log.seconds = steps, time.perf_counter() - start
    log.dead_fraction = float(dead_mask(sae, dead_after).float().mean())
    return log


def row_batches(vectors: torch.Tensor, size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless batches of `size` rows of an in-memory (N, d) matrix, drawn with replacement from a
    generator of its own (for activations that do fit in memory, such as pooled channel maxima)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield vectors[torch.randint(len(vectors), (size,), generator=generator).to(vectors.device)]
