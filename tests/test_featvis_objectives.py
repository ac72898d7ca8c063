"""Objectives score every image of a batch; composition and targeting match direct formulas;
render.evaluate scores a batch of images under one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.featvis import objectives as obj
from mechinterp.featvis.render import evaluate
from mechinterp.hooks import LayerNotFoundError


@pytest.fixture
def activations():
    generator = torch.Generator().manual_seed(0)
    return {"conv": torch.randn(4, 6, 5, 5, generator=generator),
            "fc": torch.randn(4, 10, generator=generator),
            "input": torch.rand(4, 3, 8, 8, generator=generator)}


def test_targets_score_each_image(activations):
    conv, fc, image = activations["conv"], activations["fc"], activations["input"]
    assert torch.allclose(obj.channel("conv", 2)(activations), conv[:, 2].mean(dim=(1, 2)))
    assert torch.allclose(obj.channel("conv", [3, 1, 0, 5])(activations),
                          torch.stack([conv[i, c].mean() for i, c in enumerate([3, 1, 0, 5])]))
    assert torch.allclose(obj.neuron("conv", 4)(activations), conv[:, 4, 2, 2])
    assert torch.allclose(obj.neuron("conv", 4, x=0, y=3)(activations), conv[:, 4, 3, 0])
    assert torch.allclose(obj.class_logit("fc", 7)(activations), fc[:, 7])
    assert torch.allclose(obj.deepdream("conv")(activations), conv.pow(2).mean(dim=(1, 2, 3)))
    vector = torch.randn(6)
    expected = torch.einsum("bchw,c->bhw", conv, vector / vector.norm()).mean(dim=(1, 2))
    assert torch.allclose(obj.direction("conv", vector)(activations), expected, atol=1e-6)
    assert torch.allclose(obj.total_variation()(activations),
                          (image.diff(dim=2).abs().mean(dim=(1, 2, 3)) + image.diff(dim=3).abs().mean(dim=(1, 2, 3))))


def test_objectives_compose_and_target_one_image(activations):
    conv = activations["conv"]
    goal = obj.channel("conv", 1) - 0.5 * obj.l2() + 2 * obj.channel("conv", 3, batch=2)
    expected = conv[:, 1].mean(dim=(1, 2)) - 0.5 * ((activations["input"] - 0.5) ** 2).mean(dim=(1, 2, 3)).sqrt()
    expected[2] += 2 * conv[2, 3].mean()
    assert torch.allclose(goal(activations), expected, atol=1e-5)
    assert goal.layers == {"conv", "input"}
    assert torch.allclose((-goal)(activations), -expected, atol=1e-5)
    assert obj.channel("conv", range(4)).batch_size == 4


def test_diversity_is_minus_mean_gram_cosine_to_the_others(activations):
    conv = activations["conv"]
    grams = torch.stack([(a.flatten(1) @ a.flatten(1).T).flatten() for a in conv])
    cosine = F.cosine_similarity(grams[:, None], grams[None], dim=-1)
    expected = -(cosine.sum(1) - cosine.diagonal()) / 4
    assert torch.allclose(obj.diversity("conv")(activations), expected, atol=1e-5)


def test_reading_a_layer_that_was_not_captured_names_the_objective(activations):
    with pytest.raises(KeyError, match=r"channel\('relu', 0\) reads layer 'relu'"):
        obj.channel("relu", 0)(activations)
    with pytest.raises(TypeError):
        obj.channel("conv", 0) * obj.channel("conv", 1)


def test_render_evaluate_scores_the_preprocessed_forward_pass_and_the_raw_input():
    """featvis.render.evaluate, which the featvis figures score dataset images with: the layer
    terms see the model run on preprocess(images), the input terms the images as given."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    images = torch.rand(5, 3, 6, 6, requires_grad=True)
    preprocess = lambda x: 2.0 * x - 1.0                                  # noqa: E731
    objective = obj.channel("1", 2) + 0.5 * obj.neuron("0", 3, x=1, y=4) - obj.l2()
    scores = evaluate(model, objective, images, preprocess)
    with torch.no_grad():
        conv = model[0](preprocess(images))
        expected = (conv.relu()[:, 2].mean(dim=(1, 2)) + 0.5 * conv[:, 3, 4, 1]
                    - ((images - 0.5) ** 2).flatten(1).mean(1).add(1e-8).sqrt())
    torch.testing.assert_close(scores, expected)
    assert scores.shape == (5,) and not scores.requires_grad
    with pytest.raises(LayerNotFoundError, match="reads a layer the model does not have"):
        evaluate(model, obj.channel("conv9", 0), images)


def test_per_image_directions_weighted_by_cosine_and_l2_around_zero(activations):
    """The superposition figure renders one SAE direction per image of a dense layer with
    direction(..., cosine_power=1) - l2(constant=0): dot * cos(activation, v), RMS of the image."""
    fc = activations["fc"].double().numpy()
    vectors = torch.randn(4, 10, generator=torch.Generator().manual_seed(3))
    units = vectors.double().numpy() / np.linalg.norm(vectors.double().numpy(), axis=1, keepdims=True)
    dot = (fc * units).sum(1)
    cosine = dot / np.linalg.norm(fc, axis=1)
    expected = dot * np.maximum(cosine, 1e-4)                   # a direction pointing away scores ~0
    found = obj.direction("fc", vectors, cosine_power=1.0)(activations)
    np.testing.assert_allclose(found.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert obj.direction("fc", vectors).batch_size == 4
    image = activations["input"].double().numpy()
    rms = np.sqrt((image ** 2).reshape(4, -1).mean(1))
    np.testing.assert_allclose(obj.l2(constant=0.0)(activations).numpy(), rms, rtol=1e-5)
    with pytest.raises(ValueError, match=r"vectors \(3, 10\) do not match"):
        obj.direction("fc", vectors[:3])(activations)
