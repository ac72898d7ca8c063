"""Attribution against Captum (the independent reference) and against the completeness axiom."""
import numpy as np
import pytest
import torch
from captum.attr import (InputXGradient, IntegratedGradients, LayerIntegratedGradients,
                         Saliency)
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from mechinterp.attribution.gradients import (RULES, gradient_times_input, integrated_gradients,
                                              layer_integrated_gradients, layer_path_gradients,
                                              quadrature, saliency)

STEPS = 24


@pytest.fixture(scope="module")
def model_and_inputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(12, 5)).eval()
    inputs = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, inputs, torch.tensor([0, 1, 2, 3, 4, 0])


CAPTUM_METHOD = {rule: rule for rule in RULES} | {"trapezoid": "riemann_trapezoid"}


def captum_in_our_convention(attributions, rule, steps):
    """Captum weights its trapezoid nodes 1/n (summing to (n-1)/n); ours are the textbook 1/(n-1)."""
    return attributions * steps / (steps - 1) if rule == "trapezoid" else attributions


@pytest.mark.parametrize("rule", RULES)
def test_integrated_gradients_match_captum(model_and_inputs, rule):
    model, inputs, target = model_and_inputs
    ours = integrated_gradients(model, inputs, target, steps=STEPS, rule=rule, internal_batch_size=20)
    theirs = IntegratedGradients(model).attribute(inputs, target=target, n_steps=STEPS,
                                                  method=CAPTUM_METHOD[rule])
    theirs = captum_in_our_convention(theirs, rule, STEPS)
    assert torch.allclose(ours.attributions, theirs, atol=1e-7, rtol=1e-4)


def test_integrated_gradients_match_captum_with_a_baseline(model_and_inputs):
    model, inputs, target = model_and_inputs
    baseline = torch.full_like(inputs[0], 0.5)
    ours = integrated_gradients(model, inputs, target, baseline=baseline, steps=STEPS)
    theirs, delta = IntegratedGradients(model).attribute(
        inputs, baselines=baseline[None], target=target, n_steps=STEPS,
        return_convergence_delta=True)
    assert torch.allclose(ours.attributions, theirs, atol=1e-7, rtol=1e-4)
    assert torch.allclose(ours.completeness_gap, delta, atol=1e-5)
    scalar = integrated_gradients(model, inputs, target, baseline=0.5, steps=STEPS)
    assert torch.allclose(scalar.attributions, ours.attributions)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_middle", "trapezoid"])
def test_layer_integrated_gradients_match_captum(model_and_inputs, rule):
    model, inputs, target = model_and_inputs
    ours = layer_integrated_gradients(model, inputs, "4", target, steps=STEPS, rule=rule,
                                      internal_batch_size=30)
    theirs = LayerIntegratedGradients(model, model[4]).attribute(
        inputs, target=target, n_steps=STEPS, method=CAPTUM_METHOD[rule])
    theirs = captum_in_our_convention(theirs, rule, STEPS)
    assert ours.attributions.shape == (6, 12, 8, 8)
    assert torch.allclose(ours.attributions, theirs, atol=1e-7, rtol=1e-4)


def test_saliency_and_gradient_times_input_match_captum(model_and_inputs):
    model, inputs, target = model_and_inputs
    leaf = inputs.clone().requires_grad_(True)
    assert torch.allclose(saliency(model, inputs, target, absolute=True),
                          Saliency(model).attribute(leaf, target=target), atol=1e-8)
    assert torch.allclose(gradient_times_input(model, inputs, target),
                          InputXGradient(model).attribute(leaf, target=target), atol=1e-8)


@pytest.mark.parametrize("rule", RULES)
def test_completeness_gap_shrinks_with_more_steps(model_and_inputs, rule):
    model, inputs, target = model_and_inputs
    relative = []
    for steps in (2, 8, 32, 128):
        result = integrated_gradients(model, inputs, target, steps=steps, rule=rule)
        relative.append(float(result.completeness_gap.abs().mean() / result.output_difference.abs().mean()))
    assert relative == sorted(relative, reverse=True), relative
    assert relative[-1] < 0.03 and relative[-1] < relative[0] / 10


def test_layer_path_gradients_are_the_two_factors_of_captums_layer_ig(model_and_inputs):
    model, inputs, target = model_and_inputs
    baseline = torch.full_like(inputs, 0.25)
    change, mean_gradient = layer_path_gradients(model, inputs, "4", target, baseline=baseline,
                                                 steps=STEPS, internal_batch_size=len(inputs))
    with torch.no_grad():                      # the layer's change, by running the first 5 modules
        assert torch.allclose(change, model[:5](inputs) - model[:5](baseline), atol=1e-6)
    theirs = LayerIntegratedGradients(model, model[4]).attribute(
        inputs, baselines=baseline, target=target, n_steps=STEPS, method="gausslegendre")
    assert torch.allclose(change * mean_gradient, theirs, atol=1e-7, rtol=1e-4)


def test_layer_integrated_gradients_are_complete_too(model_and_inputs):
    model, inputs, target = model_and_inputs
    result = layer_integrated_gradients(model, inputs, "1", target, steps=128)
    assert float(result.relative_gap.max()) < 0.05


def test_internal_batch_size_changes_nothing_but_memory(model_and_inputs):
    model, inputs, target = model_and_inputs
    whole = integrated_gradients(model, inputs, target, steps=STEPS)
    for size in (1, 7, 500):
        chunked = integrated_gradients(model, inputs, target, steps=STEPS, internal_batch_size=size)
        assert torch.allclose(chunked.attributions, whole.attributions, atol=1e-7, rtol=1e-5)


def test_quadrature_rules_are_captums_where_they_share_its_name():
    for rule in RULES:
        step_sizes, alphas = approximation_parameters(CAPTUM_METHOD[rule])
        nodes, weights = quadrature(rule, STEPS)
        scale = STEPS / (STEPS - 1) if rule == "trapezoid" else 1.0
        assert nodes.numpy() == pytest.approx(alphas(STEPS), abs=1e-7), rule
        assert weights.numpy() == pytest.approx(scale * np.array(step_sizes(STEPS)),
                                                abs=1e-12), rule


def test_captums_trapezoid_name_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="use 'trapezoid'"):
        quadrature("riemann_trapezoid", 8)


def test_quadrature_rules_integrate_polynomials():
    n = 64
    h = 1 / (n - 1)
    # each rule's exact sum for the integral of x^2 over [0, 1] (= 1/3), from its error formula
    square = {"riemann_left": (n - 1) * n * (2 * n - 1) / (6 * n**3),
              "riemann_right": n * (n + 1) * (2 * n + 1) / (6 * n**3),
              "riemann_middle": 1 / 3 - 1 / (12 * n**2),
              "trapezoid": 1 / 3 + h**2 / 6,
              "gausslegendre": 1 / 3}
    for rule in RULES:
        nodes, weights = quadrature(rule, n)
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
        assert float((weights * nodes**2).sum()) == pytest.approx(square[rule], abs=1e-12), rule
    nodes, weights = quadrature("gausslegendre", 4)      # exact up to degree 7
    assert float((weights * nodes**7).sum()) == pytest.approx(1 / 8, abs=1e-12)


def test_one_example_or_no_target_is_one_message_in_the_users_terms(model_and_inputs):
    """A speaker calling the engine from their own script: one image where a batch is due used to
    be torch's complaint about channels deep in the model, and a missing target named the shape of
    the path points (steps x images), not the model's outputs."""
    model, inputs, _ = model_and_inputs
    model.input_shape = tuple(inputs.shape[1:])
    try:
        with pytest.raises(ValueError, match=r"are one example of .*: pass a batch, e.g. inputs\[None\]"):
            integrated_gradients(model, inputs[0], target=0)
        with pytest.raises(ValueError, match=f"the model gives {model(inputs).shape[1]} outputs per example: "
                                             "pass target="):
            integrated_gradients(model, inputs, steps=8)
    finally:
        del model.input_shape
