"""Dataset examples: streamed top-k equals a full sort; receptive fields match gradient support."""
import torch
from torch import nn

from mechinterp.featvis.dataset_examples import (receptive_field, receptive_field_crops,
                                                 top_activating_examples)
from mechinterp.hooks import run_with_cache


def conv_stack(relu: bool) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 5, padding=2), nn.ReLU() if relu else nn.Identity(), nn.MaxPool2d(2),
              nn.Conv2d(4, 6, 3, padding=1), nn.ReLU() if relu else nn.Identity(),
              nn.AvgPool2d(2), nn.Conv2d(6, 5, 3, padding=1, dilation=1)]
    return nn.Sequential(*layers).eval()


def test_streamed_top_k_equals_sorting_all_activations():
    model = conv_stack(relu=True)
    images = torch.rand(203, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    _, activations = run_with_cache(model, images, ["4"])
    per_image = activations["4"].flatten(2).max(2).values.T           # (units, images)
    top = top_activating_examples(model, "4", images, k=7, batch_size=50, progress=False)
    assert torch.allclose(top.values, per_image.topk(7, dim=1).values)
    assert torch.equal(per_image.gather(1, top.indices), top.values)   # ties may come in any order
    flat = activations["4"][top.indices[2, 0], 2].flatten()
    y, x = top.positions[2, 0].tolist()
    assert activations["4"][top.indices[2, 0], 2, y, x] == flat.max()


def test_receptive_field_matches_the_support_of_the_input_gradient():
    """Without ReLUs every weight is non-zero, so the gradient of one unit is non-zero exactly on
    its receptive field (clipped to the image): an independent check of the analytic field."""
    model = conv_stack(relu=False)
    image = torch.rand(1, 3, 24, 24, requires_grad=True)
    output = run_with_cache(model, image, [])[0]                         # (1, 5, 6, 6)
    field = receptive_field(model, "6", (3, 24, 24))
    for y, x in [(0, 0), (3, 2), (5, 5)]:
        image.grad = None
        model(image)[0, 1, y, x].backward()
        rows, cols = image.grad[0].abs().sum(0).nonzero().unbind(1)
        top, left, bottom, right = field.box(y, x)
        assert (rows.min().item(), cols.min().item()) == (max(top, 0), max(left, 0))
        assert (rows.max().item() + 1, cols.max().item() + 1) == (min(bottom, 24), min(right, 24))
    assert output.shape[-1] == 6 and field.jump == (4, 4)


def test_crops_are_the_receptive_field_of_the_best_position():
    model = conv_stack(relu=True)
    images = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    top = top_activating_examples(model, "3", images, k=3, progress=False)
    field = receptive_field(model, "3", (3, 16, 16))
    crops = receptive_field_crops(images, top, field, unit=1)
    assert crops.shape == (3, 3, 10, 10)
    y, x = top.positions[1, 0].tolist()
    first, left, bottom, right = field.box(y, x)
    inside = images[top.indices[1, 0], :, max(first, 0):min(bottom, 16), max(left, 0):min(right, 16)]
    offset_y, offset_x = max(first, 0) - first, max(left, 0) - left
    height, width = inside.shape[1:]
    assert torch.equal(crops[0, :, offset_y:offset_y + height, offset_x:offset_x + width], inside)
