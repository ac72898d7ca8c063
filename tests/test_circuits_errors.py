"""Bad layer names, unit indices, shapes and options give one clear message saying what to do."""
import pytest
import torch
from torch import nn

from mechinterp.circuits.ablation import ablation_effect
from mechinterp.attribution.gradients import integrated_gradients, layer_integrated_gradients
from mechinterp.circuits.key_value import key_value_pairs, top_pairs
from mechinterp.circuits.patching import patch_each_unit
from mechinterp.circuits.weights import chain_expanded_weights, strongest_inputs, unit_kernel, weight_nmf
from mechinterp.hooks import LayerNotFoundError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.relu1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(6, 3)

    def forward(self, x):
        features = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.pool(features).flatten(1))


@pytest.fixture
def net():
    return Net().eval()


def test_a_misspelt_layer_names_the_closest_layers(net):
    with pytest.raises(LayerNotFoundError, match=r"no layer 'conv3'. Did you mean 'conv2', 'conv1'"):
        unit_kernel(net, "conv3", 0, 0)
    with pytest.raises(LayerNotFoundError, match="relu_2"):
        ablation_effect(net, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), "relu_2", [0])
    with pytest.raises(LayerNotFoundError, match="Did you mean"):
        layer_integrated_gradients(net, torch.rand(2, 3, 8, 8), "rleu1", target=0)


def test_a_layer_of_the_wrong_kind_lists_the_right_ones(net):
    with pytest.raises(TypeError, match=r"'relu1' is a ReLU, not a Conv2d.*'conv1', 'conv2'"):
        strongest_inputs(net, "relu1", 0)
    with pytest.raises(TypeError, match="not a Linear"):
        key_value_pairs(net, "conv1", "fc")


def test_a_unit_out_of_range_names_the_layer_size(net):
    with pytest.raises(ValueError, match=r"unit 9 is out of range: layer 'relu2' has 6 units"):
        ablation_effect(net, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), "relu2", [1, 9])
    with pytest.raises(ValueError, match=r"unit 4 is out of range.*conv2 \(input channels\)"):
        unit_kernel(net, "conv2", source_unit=4, target_unit=0)
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="out of range"):
        patch_each_unit(net, images[:1], images[1:], "relu1", units=[7],
                        target_class=0, donor_class=1)


def test_shape_mismatches_say_which_shapes(net):
    with pytest.raises(ValueError, match=r"target has per-example shape \(3, 8, 8\) but donor has \(3, 9, 9\)"):
        patch_each_unit(net, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 9, 9), "relu1")
    with pytest.raises(ValueError, match="baseline of shape"):
        integrated_gradients(net, torch.rand(2, 3, 8, 8), target=0, baseline=torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        ablation_effect(net, torch.rand(2, 3, 8, 8), torch.tensor([0, 1, 2]), "relu1", [0])
    mlp = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(ValueError, match="inputs have 49 values each but the keys have 64"):
        top_pairs(key_value_pairs(mlp, "0", "2"), torch.rand(7, 7), logit_class=0)
    with pytest.raises(ValueError, match="not one hidden layer apart"):
        key_value_pairs(nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2)), "0", "1")
    with pytest.raises(ValueError, match="gives 4 channels but"):
        chain_expanded_weights(net.conv1, nn.Conv2d(5, 2, 1))


def test_bad_options_list_the_good_ones(net):
    images, labels = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"one of \('zero', 'mean', 'resample'\)"):
        ablation_effect(net, images, labels, "relu1", [0], method="shuffle")
    with pytest.raises(ValueError, match="needs reference inputs"):
        ablation_effect(net, images, labels, "relu1", [0], method="mean")
    with pytest.raises(ValueError, match="rule must be one of"):
        integrated_gradients(net, images, target=0, rule="simpson")
    with pytest.raises(ValueError, match="pass target="):
        integrated_gradients(net, images)
    with pytest.raises(ValueError, match="target class 5 is out of range"):
        integrated_gradients(net, images, target=5)
    with pytest.raises(ValueError, match="same class"):
        patch_each_unit(net, images[:1], images[1:], "relu1", target_class=2, donor_class=2)
    with pytest.raises(ValueError, match="components must be between"):
        weight_nmf(net.conv2.weight, components=0)
    with pytest.raises(ValueError, match="stride 1"):
        chain_expanded_weights(nn.Conv2d(2, 2, 3, stride=2))
