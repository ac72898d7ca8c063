"""Bad input fails early with one clear message: NaN, a missing layer, mismatched targets."""
import pytest
import torch
from torch import nn

from mechinterp.featvis import objectives as obj
from mechinterp.featvis.render import RenderSettings, render
from mechinterp.hooks import LayerNotFoundError


class TinyNet(nn.Module):
    """conv1 -> relu1 -> out; with make_nan the output is log(relu1 - 100): NaN everywhere."""

    def __init__(self, make_nan: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.out = nn.Identity()
        self.make_nan = make_nan
        self.input_shape = (3, 8, 8)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        return self.out(torch.log(x - 100.0) if self.make_nan else x)


def test_nan_in_the_model_stops_with_the_step_and_the_images():
    with pytest.raises(FloatingPointError, match=r"diverged at step 1: .* is nan for images \[0, 1\]"):
        render(TinyNet(make_nan=True).eval(), obj.channel("out", [0, 1]), steps=3, progress=False)


def test_objective_naming_a_missing_layer_says_which_layer_and_objective():
    with pytest.raises(LayerNotFoundError, match=r"channel\('relu9', 0\).*no layer 'relu9'.*relu1"):
        render(TinyNet().eval(), obj.channel("relu9", 0), steps=1, progress=False)


def test_per_image_targets_must_match_the_batch():
    with pytest.raises(ValueError, match="3 targets for a batch of 4"):
        render(TinyNet().eval(), obj.channel("relu1", range(3)), batch_size=4, steps=1, progress=False)


def test_channel_index_beyond_the_layer_is_an_index_error():
    with pytest.raises(IndexError, match="has 4 channels"):
        render(TinyNet().eval(), obj.channel("relu1", 7), steps=1, progress=False)


def test_model_without_input_shape_needs_image_shape():
    model = nn.Sequential(nn.Conv2d(1, 2, 3)).eval()
    with pytest.raises(ValueError, match=r"add `input_shape: \[C, H, W\]`.*models/zoo.yaml"):
        render(model, obj.channel("0", 0), steps=1, progress=False)
    result = render(model, obj.channel("0", 0), steps=2, image_shape=(1, 8, 8),
                    settings=RenderSettings(transforms="none"), progress=False)
    assert result.images.shape == (1, 1, 8, 8)


def test_unit_that_is_off_on_the_start_image_warns():
    model = TinyNet().eval()
    with torch.no_grad():
        model.conv1.bias[:] = -10.0           # every unit is off on a grey image
    with pytest.warns(UserWarning, match="zero gradient for images"):
        render(model, obj.channel("relu1", [0, 1]), steps=2, progress=False)
