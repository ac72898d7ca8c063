"""The experiments of Toy Models of Superposition (Elhage et al. 2022), each one batched training run.

    intro = intro_sweep(sparsities=[0.0, 0.8, 0.9])          # n=5 features in m=2 dimensions
    phase = phase_diagram(n_densities=12, n_importances=12)  # n=2, m=1: which of three regimes wins
    geometry = uniform_importance_geometry(n_features=50, n_hidden=10)   # dims per feature vs 1/(1-S)

Every experiment trains `replicas` seeds of each setting side by side and keeps the replica with
the lowest loss on a common evaluation batch: in low dimensions gradient descent sometimes stops
in a worse arrangement, and the paper reports the best of several runs for the same reason.
All settings and replicas of one experiment train as instances of one ToyModel.

The commonest trap is a sign: two features that start pointing the same way settle on a shared
direction with a negative bias, and never reach the antipodal pair that would have lower loss.
So replicas come in antithetic pairs: the second starts from the first's weights with every
other feature negated. Each replica's start is still Xavier-normal (the distribution is
symmetric), but a pair always tries both relative signs of neighbouring features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mechinterp.superposition.measures import feature_norms, instance_loss
from mechinterp.superposition.toy_models import ToyModel, ToyModelSpec, train_toy_models

REPRESENTED_NORM = 0.5      # a feature with ‖W_i‖ above this is represented (trained norms are ~0 or ~1)
PHASE_NAMES = ("not represented", "dedicated dimension", "superposition")

# Feature dimensionalities the paper finds features sticking to: 1 (own dimension), 3/4
# (tetrahedron), 2/3 (triangle), 1/2 (antipodal pair), 2/5 (pentagon), 3/8 (square antiprism).
STICKY_FRACTIONS = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}


@dataclass
class SweepResult:
    """The best replica of each setting: W (points, n, m), b (points, n), loss (points,)."""
    feature_probability: torch.Tensor   # (points, n)
    importance: torch.Tensor            # (points, n)
    W: torch.Tensor
    b: torch.Tensor
    loss: torch.Tensor
    all_losses: torch.Tensor            # (points, replicas): every replica, for the record


@dataclass
class TrainSettings:
    """How each experiment trains: the notebook's defaults."""
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "constant"
    replicas: int = 4
    seed: int = 0
    antithetic: bool = True     # replica pairs start with every other feature's sign flipped
    progress: bool = False


@torch.no_grad()
def make_antithetic_pairs(model: ToyModel, replicas: int) -> None:
    """Replica 2j+1 of each setting starts as replica 2j with features 1, 3, 5, ... negated."""
    W = model.W.view(-1, replicas, *model.W.shape[1:])
    signs = torch.ones(model.W.shape[1], 1, device=model.W.device)
    signs[1::2] = -1
    W[:, 1::2] = W[:, 0:replicas - replicas % 2:2] * signs


def train_sweep(n_features: int, n_hidden: int, feature_probability: torch.Tensor,
                importance: torch.Tensor, settings: TrainSettings, device=None,
                nonlinearity: str = "relu") -> SweepResult:
    """Train `replicas` instances of each of the P settings ((P, n) tensors) and keep the best."""
    replicas = settings.replicas
    spec = ToyModelSpec(n_features, n_hidden, feature_probability.repeat_interleave(replicas, 0),
                        importance.repeat_interleave(replicas, 0), nonlinearity)
    model = ToyModel(spec, seed=settings.seed, device=device)
    if settings.antithetic:
        make_antithetic_pairs(model, replicas)
    train_toy_models(model, settings.steps, settings.batch_size, settings.lr,
                     settings.lr_schedule, seed=settings.seed, progress=settings.progress)
    losses = instance_loss(model).view(-1, replicas)
    best = losses.argmin(dim=1) + torch.arange(losses.shape[0], device=losses.device) * replicas
    return SweepResult(feature_probability.cpu(), importance.cpu(), model.W.detach()[best].cpu(),
                       model.b.detach()[best].cpu(), losses.min(dim=1).values.cpu(), losses.cpu())


def intro_sweep(sparsities=(0.0, 0.8, 0.9), n_features: int = 5, n_hidden: int = 2,
                importance_decay: float = 0.9, settings: TrainSettings | None = None,
                device=None) -> SweepResult:
    """The paper's introduction: n=5 features of importance 0.9**i in m=2 dimensions, per sparsity."""
    density = 1.0 - torch.as_tensor(sparsities, dtype=torch.float32)
    probability = density[:, None].expand(-1, n_features)
    importance = (importance_decay ** torch.arange(n_features, dtype=torch.float32))
    importance = importance[None, :].expand(len(density), -1)
    return train_sweep(n_features, n_hidden, probability, importance, settings or TrainSettings(), device)


@dataclass
class PhaseDiagram:
    """n=2, m=1 models over feature density (columns) and the extra feature's importance (rows)."""
    densities: np.ndarray          # (columns,) 1 - S, shared by both features
    relative_importance: np.ndarray   # (rows,) importance of feature 2; feature 1 has importance 1
    phase: np.ndarray              # (rows, columns) index into PHASE_NAMES
    extra_norm: np.ndarray         # (rows, columns) ‖W_2‖
    first_norm: np.ndarray         # (rows, columns) ‖W_1‖
    sweep: SweepResult


def classify_extra_feature(W: torch.Tensor) -> torch.Tensor:
    """Phase of feature 2 in n=2, m=1 models: 0 not represented, 1 dedicated, 2 superposition."""
    norms = feature_norms(W)
    extra_represented = norms[:, 1] > REPRESENTED_NORM
    first_represented = norms[:, 0] > REPRESENTED_NORM
    phase = torch.zeros(len(W), dtype=torch.long)
    phase[extra_represented & ~first_represented] = 1
    phase[extra_represented & first_represented] = 2
    return phase


def phase_diagram(n_densities: int = 12, n_importances: int = 12, density_range=(0.01, 1.0),
                  importance_range=(0.1, 10.0), settings: TrainSettings | None = None,
                  device=None) -> PhaseDiagram:
    """Sweep log-spaced densities and relative importances of the extra feature (paper's Fig. 'phase change')."""
    densities = np.geomspace(*density_range, n_densities)
    relative = np.geomspace(*importance_range, n_importances)
    rows, columns = np.meshgrid(relative, densities, indexing="ij")
    probability = torch.tensor(columns.ravel(), dtype=torch.float32)[:, None].expand(-1, 2)
    importance = torch.stack([torch.ones(rows.size), torch.tensor(rows.ravel())], dim=1).float()
    sweep = train_sweep(2, 1, probability, importance, settings or TrainSettings(), device)
    norms = feature_norms(sweep.W).numpy()
    shape = (n_importances, n_densities)
    return PhaseDiagram(densities, relative, classify_extra_feature(sweep.W).numpy().reshape(shape),
                        norms[:, 1].reshape(shape), norms[:, 0].reshape(shape), sweep)


def uniform_importance_geometry(n_features: int = 50, n_hidden: int = 10, n_points: int = 16,
                                max_inverse_density: float = 100.0, inverse_densities=None,
                                settings: TrainSettings | None = None, device=None) -> SweepResult:
    """Equal importance; 1/(1-S) log-spaced from 1 to max_inverse_density (or as given)."""
    if inverse_densities is None:
        inverse_densities = np.geomspace(1.0, max_inverse_density, n_points)
    inverse_density = np.asarray(inverse_densities, dtype=np.float64)
    n_points = len(inverse_density)
    probability = torch.tensor(1.0 / inverse_density, dtype=torch.float32)[:, None]
    probability = probability.expand(-1, n_features)
    importance = torch.ones(n_points, n_features)
    return train_sweep(n_features, n_hidden, probability, importance, settings or TrainSettings(), device)
