"""Render: visualisations recover known filters, batches equal single renders, and optimised images
drive units far beyond anything in the dataset."""
import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from mechinterp.featvis import objectives as obj
from mechinterp.featvis.dataset_examples import top_activating_examples
from mechinterp.featvis.render import RenderSettings, render
from mechinterp.hooks import run_with_cache

FILTER_ANGLES = (30.0, 120.0)


def gabor(size: int, angle_degrees: float, wavelength: float = 4.0, sigma: float = 2.0) -> torch.Tensor:
    offsets = torch.arange(size) - (size - 1) / 2
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    along = x * math.cos(math.radians(angle_degrees)) + y * math.sin(math.radians(angle_degrees))
    return torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) * torch.cos(2 * math.pi * along / wavelength)


class OrientedFilterNet(nn.Module):
    """Grey 25x25 input -> two 9x9 Gabor filters (30 and 120 degrees) -> ReLU: units we know."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 9)
        with torch.no_grad():
            for unit, angle in enumerate(FILTER_ANGLES):
                self.conv.weight[unit, 0] = gabor(9, angle)
            self.conv.bias.fill_(0.1)          # on at the grey start, so the gradient flows
        self.relu = nn.ReLU()
        self.input_shape = (1, 25, 25)

    def forward(self, x):
        return self.relu(self.conv(x - 0.5))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()


@pytest.mark.parametrize("fourier, threshold", [(False, 0.95), (True, 0.7)])
def test_neuron_visualisation_is_the_known_filters_preferred_pattern(fourier, threshold):
    """A linear unit's best input in [0, 1] is 0.5 + 0.5 sign(w) over its window (and 0.5 elsewhere)."""
    net = OrientedFilterNet().eval()
    settings = RenderSettings(fourier=fourier, decorrelate=False, transforms="none")
    result = render(net, obj.neuron("relu", [0, 1]), steps=160, settings=settings, progress=False)
    window = result.images[:, 0, 8:17, 8:17]           # the centre unit (8, 8) sees rows/cols 8..16
    preferred = [0.5 + 0.5 * net.conv.weight[unit, 0].detach().sign() for unit in range(2)]
    for unit, other in ((0, 1), (1, 0)):
        assert correlation(window[unit], preferred[unit]) > threshold
        assert abs(correlation(window[unit], preferred[other])) < 0.3


def dominant_orientation(image: torch.Tensor) -> float:
    """Angle (degrees, mod 180) of the strongest non-constant frequency of the image."""
    power = torch.fft.fft2(image - image.mean(), s=(64, 64)).abs() ** 2
    frequencies = torch.fft.fftfreq(64)
    fy, fx = torch.meshgrid(frequencies, frequencies, indexing="ij")
    peak = power.flatten().argmax()
    return math.degrees(math.atan2(fy.flatten()[peak], fx.flatten()[peak])) % 180


def test_channel_visualisation_with_all_priors_is_a_grating_at_the_filters_orientation():
    net = OrientedFilterNet().eval()
    result = render(net, obj.channel("relu", [0, 1]), steps=128, progress=False)
    for unit, angle in enumerate(FILTER_ANGLES):
        difference = abs(dominant_orientation(result.images[unit, 0]) - angle)
        assert min(difference, 180 - difference) < 15


class SmallNet(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.relu2(self.conv2(self.pool1(self.relu1(self.conv1(x)))))
        return self.fc(x.mean(dim=(2, 3)))


def test_batched_render_equals_single_renders_with_the_same_seeds():
    torch.manual_seed(0)
    net = SmallNet().eval()
    net.input_shape = (3, 16, 16)
    batched = render(net, obj.channel("conv2", range(4)), steps=20, seed=10, progress=False)
    for index in range(4):
        single = render(net, obj.channel("conv2", [index]), steps=20, seed=10 + index, progress=False)
        assert torch.allclose(batched.images[index], single.images[0], atol=1e-4)
        assert torch.allclose(batched.objective_values[index], single.objective_values[0], atol=1e-4)


class ViewNet(SmallNet):
    """Flattens with .view, which a channels_last activation cannot take."""

    def forward(self, x):
        x = self.relu2(self.conv2(self.pool1(self.relu1(self.conv1(x)))))
        flat = x.view(x.shape[0], -1)              # merges channels with pixels: needs NCHW strides
        return self.fc(flat.reshape(x.shape[0], 16, -1).mean(2))


def test_passes_ended_after_the_objectives_layer_give_the_images_of_whole_passes(monkeypatch):
    """render stops each forward pass after conv1 (pool1, conv2 and fc feed nothing the objective
    reads); the images are those of whole passes, and the layers after it never run."""
    import mechinterp.featvis.render as render_module
    torch.manual_seed(0)
    net = SmallNet().eval()
    net.input_shape = (3, 16, 16)
    ran_fc = []
    handle = net.fc.register_forward_hook(lambda *args: ran_fc.append(1))
    stopped = render(net, obj.channel("conv1", range(3)) - 0.1 * obj.l2(), steps=12, progress=False)
    assert len(ran_fc) == 3           # the memory-layout trial, the stop-point trial, the final scoring
    monkeypatch.setattr(render_module, "stop_point", lambda *args: None)
    whole = render(net, obj.channel("conv1", range(3)) - 0.1 * obj.l2(), steps=12, progress=False)
    handle.remove()
    assert len(ran_fc) == 3 + 2 + 12  # whole passes: the layout trial, 12 steps, the final scoring
    assert torch.equal(stopped.images, whole.images)
    assert stopped.history == whole.history


def test_channels_last_layout_gives_the_same_images_and_falls_back_for_view_models():
    torch.manual_seed(0)
    net = SmallNet().eval()
    net.input_shape = (3, 16, 16)
    goal = obj.channel("conv2", range(3))
    layouts = [render(net, goal, steps=15, settings=RenderSettings(channels_last=flag), progress=False)
               for flag in (True, False)]
    assert torch.allclose(layouts[0].images, layouts[1].images, atol=1e-4)
    view_net = ViewNet().eval()
    view_net.load_state_dict(net.state_dict())
    view_net.input_shape = (3, 16, 16)
    with pytest.raises(RuntimeError, match="view"):       # the model really cannot take channels_last
        view_net(torch.rand(1, 3, 16, 16).contiguous(memory_format=torch.channels_last))
    from_view_net = render(view_net, goal, steps=15, settings=RenderSettings(channels_last=True), progress=False)
    assert torch.allclose(from_view_net.images, layouts[1].images, atol=1e-4)


def test_render_is_deterministic_and_keeps_the_requested_snapshots():
    torch.manual_seed(0)
    net = SmallNet().eval()
    net.input_shape = (3, 16, 16)
    runs = [render(net, obj.channel("conv1", range(2)), steps=6, snapshot_steps=(0, 3, 6), progress=False)
            for _ in range(2)]
    assert torch.equal(runs[0].images, runs[1].images)
    assert sorted(runs[0].snapshots) == [0, 3, 6]
    assert torch.equal(runs[0].snapshots[6], runs[0].images)
    assert not torch.allclose(runs[0].snapshots[0], runs[0].snapshots[3])


def trained_digits_net() -> tuple[nn.Module, torch.Tensor]:
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(digits.target)
    torch.manual_seed(0)
    net = SmallNet(channels=1)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(5):
        order = torch.randperm(len(images))
        for start in range(0, len(images), 64):
            batch = order[start:start + 64]
            loss = F.cross_entropy(net(images[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.input_shape = (1, 8, 8)
    return net.eval(), images


def test_activation_reached_far_exceeds_the_dataset_maximum():
    """Measured in the unit's own dataset spread: (reached - dataset max) / dataset std, per channel
    of the pre-ReLU conv layer (Cammarata et al. report synthetic curves at tens of sigma)."""
    net, images = trained_digits_net()
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == torch.tensor(load_digits().target)).float().mean()
        per_image = run_with_cache(net, images, ["conv2"])[1]["conv2"].mean(dim=(2, 3))
    assert accuracy > 0.7                      # a real, trained network
    top = top_activating_examples(net, "conv2", images, k=1, statistic="mean", progress=False)
    assert torch.allclose(top.values[:, 0], per_image.max(0).values)
    result = render(net, obj.channel("conv2", range(16)), steps=96,
                    settings=RenderSettings(learning_rate=0.1), progress=False)
    beyond_maximum = (result.objective_values - top.values[:, 0]) / per_image.std(0)
    assert beyond_maximum.min() > 2 and beyond_maximum.median() > 3.5


def test_render_adam_matches_torch_optim_adam():
    from mechinterp.featvis.render import Adam
    # 3 x 37: whole vector lanes and a remainder in each row
    start = torch.randn(3, 37, generator=torch.Generator().manual_seed(0))
    ours, fused, plain = (start.clone().requires_grad_(True) for _ in range(3))
    optimisers = [Adam([ours], lr=0.05), torch.optim.Adam([fused], lr=0.05, fused=True),
                  torch.optim.Adam([plain], lr=0.05)]
    for step in range(20):
        for parameter, optimiser in zip((ours, fused, plain), optimisers):
            optimiser.zero_grad()
            (parameter.sin() * torch.arange(37.0)).sum().backward()
            optimiser.step()
    assert torch.equal(ours, fused)                       # the same kernel
    assert torch.allclose(ours, plain, atol=1e-6) and not torch.equal(ours, start)


def test_a_render_whose_images_stay_flat_warns_and_a_visible_one_does_not():
    """The naive L2-weighted setting that left an SAE's conv-layer panels blank grey (trial D)."""
    import warnings
    from tests.grey_cnn import grey_nested_cnn
    model = grey_nested_cnn(size=12)
    goal = obj.channel("features.4", [0, 1])
    with pytest.warns(UserWarning, match=r"images \[0, 1\] \(2 of 2\) are flat .* lower the penalty weight"):
        render(model, goal - 50.0 * obj.l2(), steps=30, settings=RenderSettings.naive(), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = render(model, goal, steps=30, settings=RenderSettings.naive(), progress=False)
    assert result.images.flatten(1).std(1).min() > 0.01
