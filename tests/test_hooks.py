"""mechinterp.hooks on a torchvision-style nested model and on a plain Sequential.

References are independent of the hooks: activations are recomputed by calling the submodules
directly, and interventions are compared with models whose weights were edited to have the same
effect (zeroing a unit's weights and bias zeroes that unit).
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mechinterp.hooks import (LayerNotFoundError, StopForward, capture, forward_until_stopped, get_module,
                              intervene, last_call, layer_names, patch_from_donor, replace_units,
                              run_with_cache, scale_units, stop_after, zero_units)


class BasicBlock(nn.Module):
    """torchvision's ResNet block: one ReLU module used twice, in-place ops, a residual add."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.layer2 = nn.Sequential(BasicBlock(8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics, so eval mode is not the identity."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model


@pytest.fixture
def resnet():
    torch.manual_seed(0)
    return _randomise_norms(TinyResNet()).eval()


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4)).eval()


def _no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_nested_names_are_those_of_named_modules(resnet):
    names = layer_names(resnet)
    assert names[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert "layer2.0.conv2" in names and names[-1] == "fc"
    assert get_module(resnet, "layer1.1.bn2") is resnet.layer1[1].bn2


def test_capture_nested_layers_matches_direct_computation(resnet):
    x = torch.randn(2, 3, 12, 12)
    with capture(resnet, ["conv1", "layer1.0.conv1", "layer1.1", "fc"]) as acts:
        logits = resnet(x)
    with torch.no_grad():
        stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
        block0 = resnet.layer1[0](stem.clone())
        expected = {"conv1": resnet.conv1(x), "layer1.0.conv1": resnet.layer1[0].conv1(stem),
                    "layer1.1": resnet.layer1[1](block0.clone()), "fc": logits}
    assert {k: tuple(v.shape) for k, v in acts.items()} == {
        "conv1": (2, 8, 12, 12), "layer1.0.conv1": (2, 8, 12, 12), "layer1.1": (2, 8, 12, 12),
        "fc": (2, 5)}
    for name, tensor in expected.items():
        torch.testing.assert_close(acts[name], tensor, rtol=1e-5, atol=1e-6)
    assert _no_hooks_left(resnet)


def test_capture_is_not_changed_by_later_in_place_ops(resnet):
    """bn1 feeds an in-place ReLU and bn2 an in-place residual add: the captured values must be
    the module outputs, with their negative values, not what later ops overwrote."""
    x = torch.randn(2, 3, 12, 12)
    with capture(resnet, ["bn1", "layer1.0.bn2"]) as acts:
        resnet(x)
    with torch.no_grad():
        bn1 = resnet.bn1(resnet.conv1(x))
        inner = resnet.layer1[0]
        bn2 = inner.bn2(inner.conv2(inner.relu(inner.bn1(inner.conv1(torch.relu(bn1))))))
    assert acts["bn1"].min() < 0
    torch.testing.assert_close(acts["bn1"], bn1)
    torch.testing.assert_close(acts["layer1.0.bn2"], bn2, rtol=1e-5, atol=1e-6)


def test_capture_on_plain_sequential(mlp):
    x = torch.randn(7, 6)
    output, acts = run_with_cache(mlp, x, ["0", "1", "2"])
    with torch.no_grad():
        torch.testing.assert_close(acts["0"], mlp[0](x))
        torch.testing.assert_close(acts["1"], torch.relu(mlp[0](x)))
    torch.testing.assert_close(acts["2"], output)
    assert acts["1"].shape == (7, 10)


def test_capture_without_detach_keeps_the_graph(mlp):
    x = torch.randn(3, 6)
    with capture(mlp, ["1"], detach=False) as acts:
        mlp(x)
    acts["1"].sum().backward()
    assert mlp[0].weight.grad is not None and mlp[0].weight.grad.abs().sum() > 0


def test_hooks_are_removed_after_an_exception(resnet, mlp):
    with pytest.raises(RuntimeError, match="boom"):
        with capture(resnet, ["layer1.0.conv1", "fc"]):
            raise RuntimeError("boom")
    assert _no_hooks_left(resnet)
    with pytest.raises(ValueError, match="expected"):  # intervention with the wrong shape
        with intervene(mlp, {"1": lambda a: a[:, :3]}):
            mlp(torch.randn(2, 6))
    assert _no_hooks_left(mlp)
    with pytest.raises(LayerNotFoundError):  # second name unknown: the first hook is removed too
        with capture(resnet, ["conv1", "layer9.conv1"]):
            pass
    assert _no_hooks_left(resnet)


def test_unknown_layer_names_the_closest(resnet):
    with pytest.raises(LayerNotFoundError, match="layer1.0.conv1"):
        get_module(resnet, "layer1.0.conv")


def test_zeroing_units_equals_zeroing_their_weights(resnet):
    x = torch.randn(3, 3, 12, 12)
    edited = copy.deepcopy(resnet)
    with torch.no_grad():
        edited.conv1.weight[[2, 5]] = 0
        edited.conv1.bias[[2, 5]] = 0
        expected = edited(x)
        with intervene(resnet, {"conv1": zero_units([2, 5])}):
            ablated = resnet(x)
        original = resnet(x)
    torch.testing.assert_close(ablated, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ablated, original)
    assert _no_hooks_left(resnet)


def test_scaling_a_nested_conv_equals_scaling_its_weights(resnet):
    x = torch.randn(2, 3, 12, 12)
    edited = copy.deepcopy(resnet)
    with torch.no_grad():
        edited.layer1[1].conv2.weight[[0, 3]] *= 2.5
        with intervene(resnet, {"layer1.1.conv2": scale_units(2.5, [0, 3])}):
            scaled = resnet(x)
        torch.testing.assert_close(scaled, edited(x), rtol=1e-5, atol=1e-5)


def test_mean_ablation_of_every_hidden_unit_gives_a_constant_output(mlp):
    x = torch.randn(9, 6)
    _, acts = run_with_cache(mlp, x, ["1"])
    means = acts["1"].mean(dim=0)
    with torch.no_grad(), intervene(mlp, {"1": replace_units(means)}):
        ablated = mlp(x)
    expected = mlp[2](means)                      # the output layer applied to the mean by hand
    torch.testing.assert_close(ablated, expected.expand(9, -1), rtol=1e-5, atol=1e-6)


def test_patching_from_a_donor_changes_the_output_exactly_as_predicted(mlp):
    target, donor = torch.randn(4, 6), torch.randn(4, 6)
    units = [1, 4, 7]
    patched = patch_from_donor(mlp, target, donor, "1", units=units)
    with torch.no_grad():
        hidden = torch.relu(mlp[0](target))
        hidden[:, units] = torch.relu(mlp[0](donor))[:, units]
        predicted = hidden @ mlp[2].weight.T + mlp[2].bias
        unpatched = mlp(target)
    torch.testing.assert_close(patched, predicted, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(patched, unpatched)
    assert _no_hooks_left(mlp)


def test_patching_a_nested_block_with_all_units_gives_the_donor_output(resnet):
    """Patching the whole last block output from the donor leaves only the head: donor logits."""
    target, donor = torch.randn(2, 3, 12, 12), torch.randn(2, 3, 12, 12)
    patched = patch_from_donor(resnet, target, donor, "layer2.0")
    with torch.no_grad():
        torch.testing.assert_close(patched, resnet(donor), rtol=1e-5, atol=1e-6)


def test_training_mode_gives_a_warning(mlp):
    mlp.train()
    with pytest.warns(UserWarning, match="training mode"):
        with capture(mlp, ["1"]):
            mlp(torch.randn(2, 6))
    with pytest.warns(UserWarning, match="training mode"):
        with intervene(mlp, {"1": zero_units()}):
            mlp(torch.randn(2, 6))


def test_a_pass_stopped_after_the_last_captured_call_captures_what_a_whole_pass_does(resnet):
    """The block's `relu` runs twice per block; the stop comes after its second call, the
    activations equal a whole pass's, and nothing after it (layer2, fc) runs."""
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    layers = ["conv1", "layer1.0.relu", "layer1.1.conv2"]
    _, whole = run_with_cache(resnet, x, layers)
    stop = last_call(resnet, layers, lambda: resnet(x))
    assert stop == ("layer1.1.conv2", 1)
    assert last_call(resnet, ["layer1.0.relu"], lambda: resnet(x)) == ("layer1.0.relu", 2)
    with torch.no_grad(), capture(resnet, layers) as stopped, stop_after(resnet, *stop), \
            capture(resnet, ["layer2", "fc"]) as after:
        forward_until_stopped(resnet, x)
        assert not after
        forward_until_stopped(resnet, x)              # the call count starts again each pass
    for name in layers:
        assert torch.equal(stopped[name], whole[name]), name
    with stop_after(resnet, "layer1.0.relu", 2), pytest.raises(StopForward):
        resnet(x)
    with stop_after(resnet):                          # no stop point: the whole pass runs
        assert resnet(x).shape == (4, 5)
    assert _no_hooks_left(resnet)


def test_no_stop_point_when_no_layer_runs(mlp):
    assert last_call(mlp, [], lambda: mlp(torch.zeros(1, 6))) is None


def test_a_layer_given_as_an_index_is_one_message_naming_the_layers():
    """layer_features(model, x, [1]) from a speaker's own script was difflib's TypeError."""
    from mechinterp.activations import layer_features
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()).eval()
    with pytest.raises(LayerNotFoundError, match=r"layer 1 \(int\) is not a layer name: give the name, one of "
                                                 r"'0', '1', '2', \.\.\."):
        layer_features(model, torch.rand(2, 4), [1])
    model.feature_layers = ["2"]
    with pytest.raises(LayerNotFoundError, match=r"one of '2', \.\.\. \(in a figure, ctx.layer\(model, param\)"):
        get_module(model, 0)
