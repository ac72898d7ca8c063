"""Sparse autoencoders: rewrite activations as sparse combinations of learned directions (a dictionary).

Both SAEs encode an activation vector x into latents f and decode a reconstruction x̂:

    f  = σ(W_enc (x/s - b_dec) + b_enc)        x̂ = s (f W_dec + b_dec)

where s is a fixed input scale (set from data, so that E‖x/s‖² = 1 and penalty weights carry
over between layers) and the rows of W_dec are the dictionary directions.

    ReluSAE   σ = ReLU; loss = ‖x - x̂‖²/s² + λ · sparsity penalty (Bricken et al. 2023)
              decoder="unit":     decoder rows renormalised to unit norm after every step and
                                  the gradient along them removed; penalty λ Σ_i f_i
              decoder="weighted": decoder rows free; penalty λ Σ_i f_i ‖W_dec,i‖ (Templeton et al. 2024)
    TopKSAE   σ = keep the k largest pre-activations, ReLU (Gao et al. 2024); no penalty. Dead
              latents get the auxiliary loss: the top k_aux dead latents must reconstruct the
              residual x - x̂, weighted by aux_coefficient (Gao et al.: 1/32).

    sae = TopKSAE(d_in=32, n_latents=128, k=4)
    sae.set_input_scale(first_batch)                 # once, before training
    reconstruction, latents = sae(x)
    losses = sae.losses(x)                           # {"loss", "scaled_error", "penalty" or "aux"}

Training and dead-latent resampling are in sae_training; metrics in sae_metrics.
"""
from __future__ import annotations

import torch
from torch import nn


class SparseAutoencoder(nn.Module):
    """Encoder, decoder and input scale shared by both SAEs; subclasses choose the activation."""

    def __init__(self, d_in: int, n_latents: int, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        directions = torch.randn(n_latents, d_in, generator=generator)
        directions /= directions.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(directions)
        self.W_enc = nn.Parameter(directions.T.clone())   # tied start (Gao et al. 2024)
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("input_scale", torch.ones(()))
        # vectors_since_active[i]: training vectors seen since latent i last fired
        self.register_buffer("vectors_since_active", torch.zeros(n_latents, dtype=torch.long))

    @property
    def n_latents(self) -> int:
        return self.W_dec.shape[0]

    @property
    def d_in(self) -> int:
        return self.W_dec.shape[1]

    def check_width(self, x: torch.Tensor) -> None:
        """Vectors of another width than the SAE's are one message, not a matrix-product error."""
        if x.shape[-1] != self.d_in:
            raise ValueError(f"the vectors have {x.shape[-1]} dimensions but this {type(self).__name__} was built "
                             f"with d_in={self.d_in}: build it with d_in={x.shape[-1]} (the layer's width)")

    @torch.no_grad()
    def set_input_scale(self, x: torch.Tensor) -> None:
        """Fix s so that E‖x/s‖² = 1, and start b_dec at the (scaled) mean activation."""
        self.check_width(x)
        self.input_scale.copy_(x.pow(2).sum(-1).mean().sqrt().clamp_min(1e-8))
        self.b_dec.copy_((x / self.input_scale).mean(0))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        self.check_width(x)
        return (x / self.input_scale - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations f, (batch, n_latents)."""
        return self.activate(self.pre_activations(x))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents @ self.W_dec + self.b_dec) * self.input_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.encode(x)
        return self.decode(latents), latents

    def scaled_squared_error(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """‖x - x̂‖² / s², averaged over the batch."""
        return ((x - reconstruction) / self.input_scale).pow(2).sum(-1).mean()

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_gradient(self) -> None:
        """Drop the part of W_dec's gradient that only changes row norms (undone by renormalising)."""
        if self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec

    def before_step(self) -> None:
        """Called between backward() and optimizer.step()."""

    def after_step(self) -> None:
        """Called after optimizer.step()."""


class ReluSAE(SparseAutoencoder):
    """ReLU latents with an L1 penalty (Bricken et al. 2023; norm-weighted: Templeton et al. 2024)."""

    def __init__(self, d_in: int, n_latents: int, l1_coefficient: float = 1e-3,
                 decoder: str = "unit", seed: int = 0):
        if decoder not in ("unit", "weighted"):
            raise ValueError(f"decoder {decoder!r}: use 'unit' (renormalised rows) or 'weighted' "
                             "(penalty weighted by row norms)")
        super().__init__(d_in, n_latents, seed)
        self.l1_coefficient = l1_coefficient
        self.decoder = decoder

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return torch.relu(pre)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        reconstruction, latents = self(x)
        error = self.scaled_squared_error(x, reconstruction)
        weights = self.W_dec.norm(dim=1) if self.decoder == "weighted" else 1.0
        penalty = (latents * weights).sum(-1).mean()
        return {"loss": error + self.l1_coefficient * penalty, "scaled_error": error, "penalty": penalty,
                "latents": latents.detach()}

    def before_step(self) -> None:
        if self.decoder == "unit":
            self.remove_parallel_gradient()

    def after_step(self) -> None:
        if self.decoder == "unit":
            self.normalise_decoder()


class TopKSAE(SparseAutoencoder):
    """Exactly k active latents per input (Gao et al. 2024), with the AuxK loss for dead latents."""

    def __init__(self, d_in: int, n_latents: int, k: int = 8, k_aux: int | None = None,
                 aux_coefficient: float = 1 / 32, dead_after: int = 10_000, seed: int = 0):
        super().__init__(d_in, n_latents, seed)
        if not 0 < k <= n_latents:
            raise ValueError(f"k={k} must lie in 1..n_latents={n_latents}")
        self.k = k
        self.k_aux = k_aux or min(n_latents, max(2 * k, d_in // 2))
        self.aux_coefficient = aux_coefficient
        self.dead_after = dead_after   # a latent is dead after this many vectors without firing

    def keep_top(self, pre: torch.Tensor, k: int) -> torch.Tensor:
        values, indices = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return self.keep_top(pre, self.k)

    def dead_latents(self) -> torch.Tensor:
        return self.vectors_since_active >= self.dead_after

    def auxiliary_loss(self, x, reconstruction, pre) -> torch.Tensor:
        """Dead latents' top k_aux reconstruct the residual, relative to the residual's size."""
        dead = self.dead_latents()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return torch.zeros((), device=x.device)
        masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
        aux_latents = self.keep_top(masked, min(self.k_aux, n_dead))
        residual = (x - reconstruction.detach()) / self.input_scale
        aux_reconstruction = aux_latents @ self.W_dec
        error = (residual - aux_reconstruction).pow(2).sum(-1).mean()
        return error / residual.pow(2).sum(-1).mean().clamp_min(1e-8)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pre = self.pre_activations(x)
        latents = self.activate(pre)
        reconstruction = self.decode(latents)
        error = self.scaled_squared_error(x, reconstruction)
        aux = self.auxiliary_loss(x, reconstruction, pre)
        return {"loss": error + self.aux_coefficient * aux, "scaled_error": error, "aux": aux,
                "latents": latents.detach()}

    def before_step(self) -> None:
        self.remove_parallel_gradient()

    def after_step(self) -> None:
        self.normalise_decoder()
