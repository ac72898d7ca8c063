"""The weight readout recovers a circuit built by hand, expanded weights match a float64 reference.

The hand-built net: layer 1 has a vertical-line, a horizontal-line and a diagonal-line detector;
layer-2 unit 0 is an "L corner" detector wired to the vertical detector one pixel to the left and
the horizontal one one pixel below, and inhibited by the diagonal one; all other weights small.
"""
import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from torch import nn

from mechinterp.circuits.weights import (chain_expanded_weights, expanded_weights, split_signs,
                                         strongest_inputs, unit_circuit, unit_kernel, weight_nmf)

VERTICAL, HORIZONTAL, DIAGONAL, NOISE_UNIT = 0, 1, 2, 3


def hand_built_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                        nn.Conv2d(4, 3, 3, padding=1), nn.ReLU())
    line = torch.tensor([[-1.0, 2.0, -1.0]] * 3) / 3
    layer1 = torch.zeros(4, 1, 3, 3)
    layer1[VERTICAL, 0], layer1[HORIZONTAL, 0] = line, line.T
    layer1[DIAGONAL, 0] = (torch.eye(3) * 3 - 1) / 3
    layer1[NOISE_UNIT, 0] = 0.01 * torch.randn(3, 3)
    layer2 = 0.02 * torch.randn(3, 4, 3, 3)
    layer2[0, VERTICAL, 1, 0] = 1.0      # vertical line one pixel to the left
    layer2[0, HORIZONTAL, 2, 1] = 0.8    # horizontal line one pixel below
    layer2[0, DIAGONAL] = -0.3           # a diagonal anywhere inhibits the corner
    with torch.no_grad():
        net[0].weight.copy_(layer1)
        net[2].weight.copy_(layer2)
        net[2].bias.fill_(-2.0)        # an AND: one line alone stays below zero
    return net.eval()


def drawn(pixels) -> torch.Tensor:
    image = torch.zeros(1, 1, 9, 9)
    for row, col in pixels:
        image[0, 0, row, col] = 1.0
    return image


def test_the_hand_built_corner_unit_fires_on_corners_only():
    net = hand_built_net()
    corner = drawn([(r, 3) for r in range(1, 6)] + [(5, c) for c in range(3, 8)])
    vertical = drawn([(r, 3) for r in range(1, 6)])
    diagonal = drawn([(i, i) for i in range(1, 8)])
    peak = lambda image: float(net(image)[0, 0].max().detach())
    assert peak(corner) > 0.3
    assert peak(vertical) < peak(corner) / 2
    assert peak(diagonal) == 0.0


def test_strongest_inputs_recover_the_planted_wiring():
    net = hand_built_net()
    excitatory = strongest_inputs(net, "2", target_unit=0, count=2, sign="positive")
    assert [s.unit for s in excitatory] == [VERTICAL, HORIZONTAL]
    assert strongest_inputs(net, "2", 0, count=1, sign="negative")[0].unit == DIAGONAL
    circuit = unit_circuit(net, "2", 0, count=2, inhibitory_count=1)
    assert [s.unit for s in circuit.inhibitory] == [DIAGONAL]
    assert set(circuit.kernels) == {VERTICAL, HORIZONTAL, DIAGONAL}


def test_kernels_show_where_each_input_excites_or_inhibits():
    net = hand_built_net()
    positive, negative = split_signs(unit_kernel(net, "2", VERTICAL, 0))
    assert np.unravel_index(int(positive.argmax()), (3, 3)) == (1, 0)
    positive, _ = split_signs(unit_kernel(net, "2", HORIZONTAL, 0))
    assert np.unravel_index(int(positive.argmax()), (3, 3)) == (2, 1)
    positive, negative = split_signs(unit_kernel(net, "2", DIAGONAL, 0))
    assert negative.min() > 0.25 and positive.max() == 0
    kernel = unit_kernel(net, "2", NOISE_UNIT, 1)
    assert torch.equal(split_signs(kernel)[0] - split_signs(kernel)[1], kernel)


def test_expanded_weights_match_a_float64_composition_of_kernels():
    torch.manual_seed(1)
    first, second = nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(5, 4, 3, padding=1)
    expanded = chain_expanded_weights(first, second)
    w1, w2 = first.weight.double().detach().numpy(), second.weight.double().detach().numpy()
    reference = np.zeros((4, 3, 5, 5))
    for out in range(4):
        for inp in range(3):
            # cross-correlation by K1 then K2 = cross-correlation by the full convolution K1 * K2
            reference[out, inp] = sum(convolve2d(w1[mid, inp], w2[out, mid]) for mid in range(5))
    assert expanded.shape == (4, 3, 5, 5)
    assert np.allclose(expanded.numpy(), reference, atol=1e-5)


def test_expanded_weights_through_a_bottleneck_and_a_residual_addition():
    torch.manual_seed(2)
    squeeze, conv = nn.Conv2d(6, 2, 1), nn.Conv2d(2, 6, 3, padding=1)
    residual = lambda a: a + conv(squeeze(a))
    expanded = expanded_weights(residual, in_channels=6, radius=1)
    direct = chain_expanded_weights(squeeze, conv)
    identity = torch.zeros(6, 6, 3, 3)
    identity[range(6), range(6), 1, 1] = 1
    assert torch.allclose(expanded, direct + identity, atol=1e-5)
    x = torch.randn(2, 6, 10, 10)
    with torch.no_grad():
        linear_part = residual(x) - residual(torch.zeros_like(x))
    assert torch.allclose(nn.functional.conv2d(x, expanded, padding=1), linear_part, atol=1e-5)


def test_expanded_weights_refuse_a_nonlinear_path():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(-1.0)
    with pytest.raises(ValueError, match="not linear"):
        expanded_weights(lambda a: torch.relu(conv(a)) + a, in_channels=2, radius=1)
    with pytest.raises(ValueError, match="radius"):
        expanded_weights(nn.Conv2d(2, 2, 5, padding=2), in_channels=2, radius=1)


def test_nmf_finds_the_two_groups_a_layer_is_built_from():
    generator = torch.Generator().manual_seed(3)
    patterns = torch.randn(2, 4 * 9, generator=generator)
    strength = torch.rand(12, generator=generator) + 0.5
    group = torch.arange(12) >= 6          # units 0-5 reuse pattern 0, units 6-11 pattern 1
    weight = (strength[:, None] * patterns[group.long()]).view(12, 4, 3, 3)
    factors = weight_nmf(weight, components=2)
    assert factors.reconstruction_error < 0.01
    found = torch.tensor(factors.factors.reshape(2, -1), dtype=torch.float32)
    cosine = nn.functional.normalize(found, dim=1) @ nn.functional.normalize(patterns, dim=1).T
    assert cosine.max(1).values.min() > 0.99
    component_of_unit = factors.unit_loadings.argmax(1)
    assert len(set(component_of_unit[:6])) == 1 and len(set(component_of_unit[6:])) == 1
    assert component_of_unit[0] != component_of_unit[6]
    assert (factors.unit_loadings >= 0).all()
