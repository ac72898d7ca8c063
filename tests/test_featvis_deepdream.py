"""DeepDream: tiles cover the photograph exactly, dreaming raises the layer's objective, and each
octave dreams at its own scale and carries the detail of the smaller ones forward; the photograph
is the sample's centre square."""
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from mechinterp.featvis import objectives as obj
from mechinterp.featvis.deepdream import deepdream, photograph, to_tiles
from tests.grey_cnn import grey_nested_cnn


def test_tiles_reassemble_into_the_image():
    image = torch.arange(2 * 6 * 9, dtype=torch.float32).reshape(1, 2, 6, 9)
    tiles = to_tiles(image, (3, 3))
    assert tiles.shape == (6, 2, 3, 3)
    assert torch.equal(tiles[4], image[0, :, 3:6, 3:6])          # row 1, column 1 of the tiling


def test_dream_raises_the_layer_objective_and_keeps_the_photograph_shape():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    model.input_shape = (3, 8, 8)
    photo = photograph("astronaut", size=None)[:, 200:230:2, 100:121]       # (3, 15, 11): not a tile multiple
    dream = deepdream(model, photo, obj.deepdream("1"), octaves=2, steps_per_octave=4, step_size=0.02,
                      progress=False)
    assert dream.image.shape == photo.shape and len(dream.octave_images) == 2
    assert 0 <= dream.image.min() and dream.image.max() <= 1
    assert dream.objective_after > 1.2 * dream.objective_before


def test_octaves_run_small_to_full_size_and_carry_their_detail_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    model.input_shape = (3, 8, 8)
    photo = photograph("astronaut", size=24)

    def dream(octaves):
        return deepdream(model, photo, obj.deepdream("1"), octaves=octaves, octave_scale=1.4,
                         steps_per_octave=4, step_size=0.02, progress=False)
    one, three = dream(1), dream(3)
    # sizes: 24 / 1.4^k rounded, k = 2, 1, 0 (never below the 8-pixel tile)
    assert [tuple(image.shape[-2:]) for image in three.octave_images] == [(12, 12), (17, 17), (24, 24)]
    assert torch.equal(three.octave_images[-1], three.image)
    # each octave adds about as much change as the single octave does: the detail of the small
    # octaves must still be in the final image (dropping it leaves the change of one octave)
    change_one = (one.image - photo).abs().mean()
    change_three = (three.image - photo).abs().mean()
    assert change_three > 1.6 * change_one
    assert three.objective_after > one.objective_after


def test_photograph_is_the_centre_square_of_the_skimage_sample_in_unit_range():
    pixels = skimage.data.coffee()                                       # (400, 600, 3) uint8
    side = min(pixels.shape[:2])
    left = (pixels.shape[1] - side) // 2
    expected = torch.from_numpy(pixels[:, left:left + side].astype(np.float32) / 255).permute(2, 0, 1)
    photo = photograph("coffee")
    assert torch.equal(photo, expected)
    grey = photograph("coffee", channels=1)
    torch.testing.assert_close(grey, expected.mean(0, keepdim=True))
    small = photograph("coffee", size=32)
    assert small.shape == (3, 32, 32) and 0 <= small.min() and small.max() <= 1
    # antialiased resizing keeps the mean colour of the photograph
    torch.testing.assert_close(small.mean(dim=(1, 2)), expected.mean(dim=(1, 2)), atol=5e-3, rtol=0)
    with pytest.raises(ValueError, match="no sample image 'lena'"):
        photograph("lena")


def test_a_colour_photograph_on_a_grey_model_is_one_error_naming_both_shapes():
    model = grey_nested_cnn()
    with pytest.raises(ValueError, match=r"shape \(3, 16, 16\), 3 channels, but the model takes "
                                         r"1-channel images \(1, 8, 8\): pass photograph\(\.\.\., channels=1\)"):
        deepdream(model, photograph(size=16), obj.deepdream("features.2"), octaves=1, steps_per_octave=1,
                  progress=False)
    dream = deepdream(model, photograph(size=16, channels=1), obj.deepdream("features.2"), octaves=1,
                      steps_per_octave=2, progress=False)
    assert dream.image.shape == (1, 16, 16)
