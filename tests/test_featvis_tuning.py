"""Stimuli and tuning: hand-built edge and curve detectors are found, labelled and oriented right."""
import math

import torch
from torch import nn

from mechinterp.featvis.stimuli import curve_image, edge_image, orientation_sweep
from mechinterp.featvis.tuning import (find_detector_family, orientation_coverage,
                                       orientation_selectivity, tuning_curves)

EDGE_ANGLES = (0, 90, 180, 270)
CURVE_ANGLES = (45, 135, 225, 315)


class HandBuiltDetectors(nn.Module):
    """Units 0-3: edge detectors (Gaussian-windowed edges); units 4-7: matched curve filters;
    unit 8: all-zero weights (responds to nothing)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 9, 11, bias=False)
        self.relu = nn.ReLU()
        self.input_shape = (1, 21, 21)
        window = torch.exp(-((torch.arange(11) - 5.0) ** 2) / 18)
        with torch.no_grad():
            self.conv.weight.zero_()
            for unit, angle in enumerate(EDGE_ANGLES):
                edge = edge_image(11, angle, softness=3.0) - 0.5
                self.conv.weight[unit, 0] = edge * window[:, None] * window[None, :]
            for unit, angle in enumerate(CURVE_ANGLES, start=4):
                curve = curve_image(11, angle, curvature=0.2, length=10)
                self.conv.weight[unit, 0] = curve - curve.mean()

    def forward(self, x):
        return self.relu(self.conv(x - 0.5))


def test_stimulus_geometry_follows_the_angle_convention():
    edge = edge_image(9, 0.0)
    assert edge[:, -1].min() == 1 and edge[:, 0].max() == 0          # bright side to the right
    upward = edge_image(9, 90.0)
    assert upward[0].min() == 1 and upward[-1].max() == 0            # 90 degrees: bright above
    curve = curve_image(31, 90.0, curvature=0.1, length=20)
    assert curve[15, 15] == 1                                        # the arc passes the centre
    rows = curve.nonzero()[:, 0].float()
    assert rows.max() - 15 > 0.5                                     # ends bend down: convex upwards
    line = curve_image(31, 0.0, curvature=0.0, length=10)
    assert line[10:21, 15].min() == 1 and line[15, 10] == 0          # vertical segment through the centre


def test_sweep_rotates_the_stimulus():
    angles, images = orientation_sweep("curve", 32, count=4, curvature=0.1, channels=3)
    assert images.shape == (4, 3, 32, 32) and angles.tolist() == [0, 90, 180, 270]
    assert torch.allclose(torch.rot90(images[0, 0], 1), images[1, 0], atol=1e-5)


def test_finder_labels_every_hand_built_detector_with_its_orientation():
    family = find_detector_family(HandBuiltDetectors().eval(), "relu", count=36)
    expected = {**{u: ("edge", a) for u, a in enumerate(EDGE_ANGLES)},
                **{u: ("curve", a) for u, a in enumerate(CURVE_ANGLES, start=4)}}
    assert sorted(family.units) == sorted(expected)                 # the blank unit is left out
    for unit, kind, preferred in zip(family.units, family.kinds, family.preferred.tolist()):
        assert kind == expected[unit][0]
        difference = abs(preferred - expected[unit][1]) % 360
        assert min(difference, 360 - difference) < 5
    assert family.coverage == {"edge": 0.5, "curve": 0.5}


def test_tuning_curve_peaks_at_the_preferred_angle_and_selectivity_is_high():
    curves = tuning_curves(HandBuiltDetectors().eval(), "relu", "edge", count=24)
    selectivity = orientation_selectivity(curves)
    assert curves.responses.shape == (9, 24)
    assert torch.allclose(selectivity.preferred[:4], torch.tensor([0.0, 90.0, 180.0, 270.0]), atol=1.0)
    assert (selectivity.selectivity[:4] > 0.9).all() and selectivity.peak[8] == 0


def test_coverage_counts_orientation_sectors():
    assert orientation_coverage(torch.arange(0.0, 360.0, 45.0)) == 1.0
    assert orientation_coverage(torch.tensor([1.0, 2.0, 359.0])) == 1 / 8
    assert orientation_coverage(torch.tensor([])) == 0.0
