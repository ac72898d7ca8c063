"""Ablation: nothing ablated changes nothing; each method equals an independent construction;
ablating a trained net's whole hidden layer takes it to chance."""
import copy

import pytest
import torch
from torch import nn

from mechinterp.circuits.ablation import (ablate_each_unit, ablation_effect, evaluate,
                                          paired_effect_size)
from mechinterp.hooks import patch_from_donor


@pytest.fixture(scope="module")
def digits_mlp(train_digits_mlp):
    """An MLP trained on 1,400 real digits (about a second); the rest is the test set."""
    model, train, _, images, labels = train_digits_mlp(hidden=24, steps=250, lr=0.01)
    return model, train, images, labels


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_ablating_nothing_changes_nothing(digits_mlp, method):
    model, train, images, labels = digits_mlp
    effect = ablation_effect(model, images, labels, "relu1", units=[], method=method, reference=train)
    assert effect.ablated_accuracy == effect.clean_accuracy
    assert effect.ablated_loss == effect.clean_loss
    assert effect.true_logit_change == 0.0 and effect.loss_effect_size == 0.0
    assert all(change == 0.0 for change in effect.per_class_loss_change)


def test_zero_ablation_equals_deleting_the_unit_from_the_weights(digits_mlp):
    model, _, images, labels = digits_mlp
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        pruned[1].weight[[3, 7]] = 0
        pruned[1].bias[[3, 7]] = 0
    effect = ablation_effect(model, images, labels, "relu1", units=[3, 7], method="zero")
    expected = evaluate(pruned, images, labels)
    assert effect.ablated_loss == pytest.approx(float(expected.losses.mean()), abs=1e-6)
    assert effect.ablated_accuracy == pytest.approx(float(expected.correct.float().mean()))


def test_mean_ablation_moves_the_logits_along_the_units_output_weights(digits_mlp):
    model, train, images, labels = digits_mlp
    unit = 5
    with torch.no_grad():
        hidden = torch.relu(model[1](model[0](images)))[:, unit]
        train_mean = torch.relu(model[1](model[0](train)))[:, unit].mean()
        clean = model(images)
        expected = clean + (train_mean - hidden)[:, None] * model[3].weight[:, unit]
    effect = ablation_effect(model, images, labels, "relu1", [unit], "mean", reference=train)
    true_change = (expected - clean).gather(1, labels[:, None])[:, 0]
    assert effect.true_logit_change == pytest.approx(float(true_change.mean()), abs=1e-5)


def test_resampling_from_a_single_reference_equals_patching_from_it(digits_mlp):
    model, train, images, labels = digits_mlp
    donor = train[:1]
    effect = ablation_effect(model, images, labels, "relu1", [0, 1, 2], "resample", reference=donor)
    patched = patch_from_donor(model, images, donor.expand(len(images), -1, -1, -1), "relu1", [0, 1, 2])
    expected_loss = nn.functional.cross_entropy(patched, labels)
    assert effect.ablated_loss == pytest.approx(float(expected_loss), abs=1e-5)


def test_ablating_the_whole_hidden_layer_leaves_chance(digits_mlp):
    model, train, images, labels = digits_mlp
    effect = ablation_effect(model, images, labels, "relu1", units=None, method="mean", reference=train)
    assert effect.clean_accuracy > 0.85
    assert effect.ablated_accuracy < 0.2
    assert effect.loss_change > 1.0 and effect.loss_effect_size > 1.0
    assert effect.true_logit_effect_size < 0
    counts = torch.bincount(labels, minlength=10).float()
    overall = sum(c * n for c, n in zip(effect.per_class_accuracy_change, counts)) / counts.sum()
    assert overall == pytest.approx(effect.accuracy_change, abs=1e-6)


def test_each_unit_alone_does_far_less_than_all_together(digits_mlp):
    model, train, images, labels = digits_mlp
    effects = ablate_each_unit(model, images, labels, "relu1", method="zero")
    assert [e.units for e in effects] == [[u] for u in range(24)]
    assert max(e.loss_change for e in effects) < 1.0
    assert sum(e.loss_change for e in effects) > 0


def test_paired_effect_size_is_mean_over_spread():
    change = torch.tensor([1.0, 2.0, 3.0])
    assert paired_effect_size(change) == pytest.approx(2.0 / 1.0)
    assert paired_effect_size(torch.zeros(5)) == 0.0


def test_peak_drop_when_zeroed_matches_the_arithmetic_of_a_hand_built_network():
    from mechinterp.circuits.ablation import peak_drop_when_zeroed
    # two 1x1-conv channels copy the input's two channels; the target sums them with weights 2, 1
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(2, 2, 1, bias=False))
    model.add_module("relu1", nn.ReLU())
    model.add_module("conv2", nn.Conv2d(2, 1, 1, bias=False))
    model.add_module("relu2", nn.ReLU())
    with torch.no_grad():
        model.conv1.weight.copy_(torch.eye(2)[:, :, None, None])
        model.conv2.weight.copy_(torch.tensor([2.0, 1.0])[None, :, None, None])
    images = torch.rand(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    pixels = images.numpy()
    before = (2 * pixels[:, 0] + pixels[:, 1]).reshape(6, -1).max(1).sum()
    after = pixels[:, 1].reshape(6, -1).max(1).sum()           # channel 0 zeroed: only the 1 x b term
    drop = peak_drop_when_zeroed(model.eval(), images, "relu1", [0], "relu2", 0)
    assert drop == pytest.approx(1 - after / before, rel=1e-6)
    assert peak_drop_when_zeroed(model, images, "relu1", [], "relu2", 0) == pytest.approx(0.0, abs=1e-7)
