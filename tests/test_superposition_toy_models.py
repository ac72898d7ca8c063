"""Toy models of superposition against the paper (Elhage et al. 2022): real training, batched.

The paper's findings checked here: with dense features an n=5, m=2 model keeps only the two most
important features, orthogonally; at 80% sparsity the four most important form antipodal pairs;
at 90% all five are embedded (a pentagon). A linear model never superposes. The n=2, m=1 phase
diagram has its three regions where the paper draws them, and with uniform importance the
dimensions per feature stick near 1/2. Training uses the notebook's AdamW with a cosine-decayed
lr of 1e-2 to 2e-2 instead of a constant 1e-3, to converge in 1,000-2,000 steps instead of 10,000.
"""
import numpy as np
import pytest
import torch

from mechinterp.superposition.experiments import (TrainSettings, intro_sweep, phase_diagram,
                                                  train_sweep, uniform_importance_geometry)
from mechinterp.superposition.measures import (dimensions_per_feature, feature_dimensionality,
                                               feature_gram, feature_norms)
from mechinterp.superposition.toy_models import (ToyModel, ToyModelSpec, instance_losses,
                                                 sample_features, train_toy_models)

FAST = TrainSettings(steps=2000, batch_size=1024, lr=1e-2, lr_schedule="cosine", replicas=4)


@pytest.fixture(scope="module")
def intro():
    return intro_sweep(sparsities=[0.0, 0.8, 0.9], settings=FAST)


def test_instances_do_not_interact():
    """The loss of one instance has zero gradient with respect to every other instance."""
    spec = ToyModelSpec(5, 2, torch.tensor([1.0, 0.5, 0.1]), torch.ones(5))
    model = ToyModel(spec, seed=0)
    x = sample_features(64, model.feature_probability, torch.Generator().manual_seed(0))
    instance_losses(model, x)[1].backward()
    assert model.W.grad[[0, 2]].abs().max() == 0 and model.W.grad[1].abs().max() > 0


def test_features_have_the_requested_sparsity_and_range():
    probability = torch.tensor([[0.05, 0.5, 1.0]])
    x = sample_features(200_000, probability, torch.Generator().manual_seed(0))
    assert x.shape == (1, 3, 200_000)                     # (instances, features, batch)
    present = (x > 0).float().mean(dim=2)[0]
    torch.testing.assert_close(present, probability[0], atol=0.005, rtol=0)
    assert x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x[0, 2].mean(), torch.tensor(0.5), atol=0.005, rtol=0)


def test_same_seed_same_models():
    spec = ToyModelSpec(5, 2, torch.tensor([1.0, 0.1]), torch.ones(5))
    first, second = ToyModel(spec, seed=3), ToyModel(spec, seed=3)
    train_toy_models(first, steps=20, seed=3)
    train_toy_models(second, steps=20, seed=3)
    assert torch.equal(first.W, second.W)


def test_dense_features_keep_the_two_most_important_orthogonally(intro):
    norms = feature_norms(intro.W[0])
    assert (norms[:2] > 0.95).all() and (norms[2:] < 0.1).all()
    assert abs(float(feature_gram(intro.W[0])[0, 1])) < 0.05      # orthogonal


def test_at_80_percent_sparsity_four_features_form_antipodal_pairs(intro):
    norms = feature_norms(intro.W[1])
    assert (norms[:4] > 0.9).all() and norms[4] < 0.1
    dimensionality = feature_dimensionality(intro.W[1])[:4]
    assert torch.allclose(dimensionality, torch.full((4,), 0.5), atol=0.05)


def test_at_90_percent_sparsity_all_five_are_embedded(intro):
    assert (feature_norms(intro.W[2]) > 0.9).all()
    dimensionality = feature_dimensionality(intro.W[2])     # pentagon: 2/5 each
    assert torch.allclose(dimensionality, torch.full((5,), 0.4), atol=0.05)


def test_linear_model_never_superposes():
    """A linear model keeps the m most important features whatever the sparsity (like PCA)."""
    probability = torch.full((1, 5), 0.1)
    importance = (0.9 ** torch.arange(5.0))[None]
    settings = TrainSettings(steps=1000, lr=1e-2, lr_schedule="cosine", replicas=1)
    result = train_sweep(5, 2, probability, importance, settings, nonlinearity="linear")
    norms = feature_norms(result.W[0])
    assert (norms[:2] > 0.9).all() and (norms[2:] < 0.1).all()


def test_phase_diagram_regions_are_where_the_paper_puts_them():
    """Rows: extra feature importance 0.1 .. 10; columns: density 0.01 .. 1 (both log-spaced)."""
    settings = TrainSettings(steps=1000, batch_size=256, lr=2e-2, lr_schedule="cosine", replicas=2)
    diagram = phase_diagram(n_densities=5, n_importances=5, settings=settings)
    np.testing.assert_allclose(diagram.relative_importance, [0.1, 10 ** -0.5, 1, 10 ** 0.5, 10])
    dense = diagram.phase[:, -1]
    assert list(dense[[0, 1, 3, 4]]) == [0, 0, 1, 1]   # dense: the more important one wins
    sparse = diagram.phase[:, 0]
    assert list(sparse[1:4]) == [2, 2, 2]               # sparse, comparable importance: both, antipodal
    superposed = diagram.sweep.W[torch.from_numpy(diagram.phase.ravel() == 2)]
    assert (superposed[:, 0, 0] * superposed[:, 1, 0] < 0).all()
    counts = (diagram.phase == 2).sum(axis=0)        # the superposition region widens as density falls
    assert counts[0] >= counts[3] > counts[4] == 0


def test_dimensions_per_feature_plateau_near_one_half():
    settings = TrainSettings(steps=1000, batch_size=512, lr=2e-2, lr_schedule="cosine", replicas=2)
    result = uniform_importance_geometry(20, 5, inverse_densities=[1.0, 2.5, 3.0, 20.0],
                                         settings=settings)
    dims = dimensions_per_feature(result.W)
    assert abs(float(dims[0]) - 1) < 0.05                  # dense: m features, one dimension each
    assert torch.allclose(dims[1:3], torch.full((2,), 0.5), atol=0.04)   # antipodal plateau
    assert dims[3] < 0.35                                  # sparser still: more per dimension
