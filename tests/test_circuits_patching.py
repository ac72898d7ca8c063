"""Activation patching: exact on whole layers, batched equals one-at-a-time, and per-unit values
equal a closed form where the rest of the network is linear."""
import pytest
import torch
from torch import nn

from mechinterp.circuits.patching import (patch_each_layer, patch_each_unit,
                                          patch_each_unit_sequential, patching_heatmap)
from mechinterp.hooks import patch_from_donor


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(12, 5)).eval()


def pairs_of_different_classes(model, count=4, seed=1):
    """Target and donor inputs whose predicted classes differ."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(64, 3, 16, 16, generator=generator)
    images = images * torch.rand(64, 3, 1, 1, generator=generator) * 4   # varied colour and contrast
    with torch.no_grad():
        predicted = model(images).argmax(1)
    targets, donors = [], []
    for i in range(len(images)):
        for j in range(len(images)):
            if predicted[i] != predicted[j] and len(targets) < count and i not in targets:
                targets.append(i)
                donors.append(j)
                break
    assert len(targets) == count, "the random net should predict at least two classes"
    return images[targets], images[donors]


def test_patching_a_whole_layer_reproduces_the_donor_output_exactly():
    model = small_cnn()
    target, donor = pairs_of_different_classes(model)
    with torch.no_grad():
        donor_logits = model(donor)
    for layer in ("1", "2", "4"):
        assert torch.equal(patch_from_donor(model, target, donor, layer), donor_logits)
    recovered = patch_each_layer(model, target, donor, ["1", "4"])
    for layer in ("1", "4"):
        assert torch.allclose(recovered[layer], torch.ones(len(target)), atol=1e-5)


def test_batched_patching_equals_one_unit_at_a_time():
    model = small_cnn()
    target, donor = pairs_of_different_classes(model)
    batched = patch_each_unit(model, target, donor, "4", units_per_batch=5)
    one_by_one = patch_each_unit_sequential(model, target, donor, "4")
    assert batched.recovered.shape == (len(target), 12)
    assert torch.allclose(batched.recovered, one_by_one.recovered, atol=1e-5)


def test_per_unit_patching_follows_the_linear_readout():
    """After relu of the last conv, the output is linear: avg-pool then a Linear. Patching unit
    u moves the logit difference by (W[d,u] - W[t,u]) * (mean donor_u - mean target_u)."""
    model = small_cnn()
    target, donor = pairs_of_different_classes(model)
    result = patch_each_unit(model, target, donor, "4")
    features = nn.Sequential(*model[:5])
    with torch.no_grad():
        target_mean = features(target).mean((2, 3))
        donor_mean = features(donor).mean((2, 3))
    weight = model[7].weight.detach()
    base = result.baseline
    shift = (weight[base.donor_class] - weight[base.target_class]) * (donor_mean - target_mean)
    expected = shift / (base.donor_difference - base.target_difference)[:, None]
    assert torch.allclose(result.recovered, expected, atol=1e-5)
    assert torch.allclose(result.recovered.sum(1), torch.ones(len(target)), atol=1e-4)


def test_heatmap_rows_are_layers_and_whole_layer_patching_recovers_everything():
    model = small_cnn()
    target, donor = pairs_of_different_classes(model)
    heat = patching_heatmap(model, target, donor, ["1", "4"])
    assert heat.values.shape == (2, 12)
    assert torch.isnan(heat.values[0, 8:]).all() and not torch.isnan(heat.values[0, :8]).any()
    assert torch.allclose(heat.whole_layer, torch.ones(2), atol=1e-5)


def test_patching_only_the_chosen_units_changes_only_them():
    model = small_cnn()
    target, donor = pairs_of_different_classes(model, count=1)
    patched_none = patch_each_unit(model, target, donor, "1", units=[])
    assert patched_none.recovered.shape == (1, 0)
    same = patch_from_donor(model, target, target, "1", units=[2, 3])
    with torch.no_grad():
        assert torch.equal(same, model(target))
