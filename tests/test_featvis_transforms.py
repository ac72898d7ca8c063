"""Transforms: differentiable, seeded per image, and geometrically right against torch references."""
import pytest
import torch

from mechinterp.featvis.transforms import (Compose, Jitter, Pad, PerImageRandom, RandomScaleRotate, random_rotate,
                                           random_scale, standard_transforms)

TRANSFORMS = {
    "pad": Pad(2),
    "jitter": Jitter(3),
    "scale": random_scale(),
    "rotate": random_rotate(),
    "standard": standard_transforms(8),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_are_differentiable(name):
    images = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    transform = TRANSFORMS[name]
    # a fresh generator per call, so every evaluation inside gradcheck draws the same transform
    assert torch.autograd.gradcheck(lambda x: transform(x, PerImageRandom([3, 4])), (images,), fast_mode=True)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_are_seeded_per_image(name):
    images = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    transform = TRANSFORMS[name]
    batch = transform(images, PerImageRandom([10, 11, 12, 13]))
    again = transform(images, PerImageRandom([10, 11, 12, 13]))
    alone = transform(images[2:3], PerImageRandom([12]))
    assert torch.equal(batch, again)
    assert torch.allclose(batch[2], alone[0], atol=1e-6)


def test_different_seeds_give_different_transforms():
    images = torch.rand(1, 3, 32, 32).expand(8, -1, -1, -1)
    shown = standard_transforms(32)(images, PerImageRandom(range(8)))
    assert len({tuple(x.flatten()[:64].tolist()) for x in shown}) > 4


def test_standard_transforms_keep_the_model_input_size():
    for size in (8, 25, 32, 64):
        assert standard_transforms(size)(torch.rand(2, 1, size, size), PerImageRandom([0, 1])).shape[-1] == size


def test_rotation_by_90_degrees_matches_rot90_and_identity_leaves_images_alone():
    images = torch.rand(3, 3, 10, 10)
    random = PerImageRandom(range(3))
    assert torch.allclose(random_rotate([90])(images, random), torch.rot90(images, 1, (2, 3)), atol=1e-5)
    assert torch.allclose(RandomScaleRotate([1.0], [0])(images, random), images, atol=1e-6)


def test_jitter_is_an_exact_crop_and_zoom_fills_with_grey():
    image = torch.arange(36.0).reshape(1, 1, 6, 6)
    cropped = Jitter(2)(image, PerImageRandom([0]))
    top, left = int(cropped[0, 0, 0, 0]) // 6, int(cropped[0, 0, 0, 0]) % 6
    assert torch.equal(cropped[0, 0], image[0, 0, top:top + 4, left:left + 4])
    zoomed_out = random_scale([0.5])(torch.ones(1, 1, 8, 8), PerImageRandom([0]))
    assert zoomed_out[0, 0, 0, 0] == 0.5 and zoomed_out[0, 0, 4, 4] == 1.0


@pytest.mark.parametrize("size", [8, 25, 32])
def test_standard_set_in_one_resample_equals_the_four_steps_in_turn(size):
    images = torch.rand(6, 3, size, size, generator=torch.Generator().manual_seed(size))
    pad = max(1, round(size / 16))
    four_steps = Compose([Pad(pad), Jitter(pad), RandomScaleRotate(), Jitter(pad)])
    seeds = range(6)
    expected = four_steps(images, PerImageRandom(seeds))
    assert torch.allclose(standard_transforms(size)(images, PerImageRandom(seeds)), expected, atol=1e-5)


def test_integer_rows_draw_what_one_call_per_column_draws():
    highs = [3, 3, 11, 26, 3, 3, 7]

    def one_row(random):
        return torch.stack([random.integers(high) for high in highs], dim=1)

    one_by_one, rows = PerImageRandom(range(5)), PerImageRandom(range(5))
    # past two blocks of rows drawn ahead, then a draw of another kind in the middle of a block
    expected = torch.stack([one_row(one_by_one) for _ in range(150)])
    drawn = torch.stack([rows.integer_rows(highs) for _ in range(150)])
    assert torch.equal(drawn, expected) and drawn.max() > 10
    assert torch.equal(rows.integers(1000), one_by_one.integers(1000))
    assert torch.equal(rows.integer_rows(highs), one_row(one_by_one))


def test_sampling_grid_is_torch_affine_grid():
    import numpy as np
    import torch.nn.functional as F
    from mechinterp.featvis.transforms import sampling_grid
    matrices = np.random.default_rng(0).normal(size=(5, 2, 3))
    for height, width in [(32, 32), (17, 40)]:
        expected = F.affine_grid(torch.as_tensor(matrices), [5, 3, height, width], align_corners=False)
        assert np.allclose(sampling_grid(matrices, height, width), expected.numpy(), atol=1e-12)
