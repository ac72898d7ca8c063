"""DeepDream: tiles cover the photograph exactly, dreaming raises the layer's objective, and each
octave dreams at its own scale and carries the detail of the smaller ones forward."""
import torch
from torch import nn

from mechinterp.featvis import objectives as obj
from mechinterp.featvis.deepdream import deepdream, photograph, to_tiles


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
