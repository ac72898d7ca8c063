"""TCAV on a model whose class logit is known to follow one direction of its hidden layer."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.universality.tcav import class_gradients, concept_layer_map, tcav, train_cav


class Quadratic(nn.Module):
    """logit 0 = h0 + |h|^2 / 2, logit 1 = -h0 + |h|^2 / 2: the gradient e0 + h varies by input,
    so only directions near +e0 (or -e0) raise (lower) logit 0 for almost every input."""

    def forward(self, h):
        bowl = 0.5 * (h ** 2).sum(dim=1)
        return torch.stack([h[:, 0] + bowl, -h[:, 0] + bowl], dim=1)


class ConceptModel(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.hidden, self.relay, self.head = nn.Linear(dims, dims), nn.Identity(), Quadratic()
        with torch.no_grad():
            self.hidden.weight.copy_(torch.eye(dims))
            self.hidden.bias.zero_()

    def forward(self, x):
        return self.head(self.relay(self.hidden(x)))


@pytest.fixture(scope="module")
def setup():
    generator = torch.Generator().manual_seed(0)
    dims = 10
    axis = torch.eye(dims)
    model = ConceptModel(dims).eval()
    concept = torch.randn(60, dims, generator=generator) * 0.5 + 2.0 * axis[0]
    other_concept = torch.randn(60, dims, generator=generator) * 0.5 + 2.0 * axis[1]
    randoms = [torch.randn(60, dims, generator=generator) * 0.5 for _ in range(10)]
    inputs = torch.randn(200, dims, generator=generator) * 0.5
    return model, concept, other_concept, randoms, inputs


def test_cav_points_at_the_concept():
    generator = torch.Generator().manual_seed(1)
    concept = torch.randn(100, 5, generator=generator) + torch.tensor([3.0, 0, 0, 0, 0])
    cav = train_cav(concept.numpy(), torch.randn(100, 5, generator=generator).numpy())
    assert cav.accuracy > 0.9
    assert cav.direction[0] > 0.9 and np.linalg.norm(cav.direction) == pytest.approx(1.0)


def test_class_gradients_equal_the_analytic_gradient(setup):
    model, _, _, _, inputs = setup
    gradients = class_gradients(model, inputs, "hidden", class_index=1)
    assert gradients == pytest.approx((inputs - torch.eye(10)[0]).double().numpy(), abs=1e-6)


def test_tcav_is_significant_for_the_used_concept_in_both_signs(setup):
    model, concept, _, randoms, inputs = setup
    up = tcav(model, "hidden", concept, randoms, inputs, class_index=0)
    down = tcav(model, "hidden", concept, randoms, inputs, class_index=1)
    assert up.mean > 0.9 and down.mean < 0.1
    assert up.sign_consistency == 1.0 and down.sign_consistency == 1.0
    assert 0.2 < np.mean(up.null_scores) < 0.8
    assert up.significant() and down.significant()
    assert min(up.cav_accuracies) > 0.85     # classes 4 sd apart: about 98% separable


def test_concept_layer_map_covers_every_concept_and_layer(setup):
    model, concept, other, randoms, inputs = setup
    table = concept_layer_map(model, ["hidden", "relay"], {"used": concept, "unused": other},
                              randoms, inputs, class_index=0)
    assert set(table) == {"used", "unused"} and set(table["used"]) == {"hidden", "relay"}
    for layer in ("hidden", "relay"):
        assert table["used"][layer].significant()
        assert not table["unused"][layer].significant()
        assert table["unused"][layer].as_dict()["cav_accuracy"] > 0.9   # present, but not used


def test_tcav_needs_two_random_sets(setup):
    model, concept, _, randoms, inputs = setup
    with pytest.raises(ValueError, match="at least 2 random sets"):
        tcav(model, "hidden", concept, randoms[:1], inputs, class_index=0)


def test_concept_attribution_matches_layer_ig_and_sums_over_a_basis(setup):
    from mechinterp.circuits.attribution import layer_integrated_gradients
    from mechinterp.universality.tcav import concept_attribution
    model, _, _, _, inputs = setup
    images = inputs[:16] + 1.0
    reference = layer_integrated_gradients(model, images, "hidden", target=0, steps=32)
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))[0]
    parts, totals = zip(*[concept_attribution(model, "hidden", images, 0, basis[:, i])
                          for i in range(10)])
    assert np.sum(parts, axis=0) == pytest.approx(totals[0], abs=1e-8)      # basis completeness
    assert totals[0] == pytest.approx(reference.attributions.sum(1).double().numpy(), abs=1e-5)
    unit_axis, _ = concept_attribution(model, "hidden", images, 0, np.eye(10)[3])
    assert unit_axis == pytest.approx(reference.attributions[:, 3].double().numpy(), abs=1e-5)


def test_concept_attribution_of_stacked_directions_is_layer_ig_of_each(setup):
    from mechinterp.circuits.attribution import layer_integrated_gradients
    from mechinterp.universality.tcav import concept_attribution
    model, _, _, _, inputs = setup
    images = inputs[:16] + 1.0
    reference = layer_integrated_gradients(model, images, "hidden", target=0, steps=32)
    unit_axes, total = concept_attribution(model, "hidden", images, 0, np.eye(10)[[3, 7, 0]])
    assert unit_axes.shape == (16, 3)
    assert unit_axes == pytest.approx(reference.attributions[:, [3, 7, 0]].double().numpy(), abs=1e-5)
    assert total == pytest.approx(reference.attributions.sum(1).double().numpy(), abs=1e-5)
