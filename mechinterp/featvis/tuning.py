"""Tuning curves over synthetic stimuli, and a finder for families of edge and curve detectors.

A unit's tuning curve is its response to one stimulus swept through every orientation, read at
the unit whose receptive field the stimulus is centred on (Cammarata et al. 2020). Plotted on a
circle (radius = response, angle = orientation), a family of detectors tiles the circle, one
petal per orientation: the "radial tuning curves" of the curve-detector papers.

    curves = tuning_curves(model, "relu2", "curve", count=36, curvature=0.1)
    curves.responses                    # (units, 36)
    chosen = orientation_selectivity(curves)   # preferred angle, selectivity in [0, 1], peak
    family = find_detector_family(model, "relu2")
    family.units, family.kinds, family.preferred, family.coverage   # coverage per kind

Selectivity is the orientation selectivity index (R_preferred - R_orthogonal) / (R_preferred +
R_orthogonal): 1 for a unit silent at right angles to its preferred orientation, 0 for a unit
that answers both alike. Lines look the same after half a turn (period 180 degrees).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from mechinterp.featvis.dataset_examples import receptive_field
from mechinterp.device import model_device
from mechinterp.featvis.render import model_input_shape
from mechinterp.featvis.stimuli import orientation_sweep
from mechinterp.hooks import run_with_cache

PERIOD_DEGREES = {"edge": 360.0, "curve": 360.0, "line": 180.0}


@dataclass
class TuningCurves:
    layer: str
    kind: str
    angles: torch.Tensor          # (N,) degrees
    responses: torch.Tensor       # (units, N) at the unit the stimuli are centred on
    position: tuple[int, int]     # (y, x) of that unit in the activation map
    stimuli: torch.Tensor         # (N, C, H, W) the images shown


@dataclass
class Selectivity:
    preferred: torch.Tensor       # (units,) degrees in [0, 360)
    selectivity: torch.Tensor     # (units,) in [0, 1]
    peak: torch.Tensor            # (units,) largest response over the sweep


def centre_unit(model: nn.Module, layer: str, input_shape) -> tuple[tuple[int, int], tuple[float, float]]:
    """The centre position of the layer's activation map, and its receptive-field centre in pixels."""
    device = model_device(model)
    _, activations = run_with_cache(model, torch.zeros(1, *input_shape, device=device), [layer])
    height, width = activations[layer].shape[-2:]
    position = (height // 2, width // 2)
    field = receptive_field(model, layer, input_shape)
    centre = tuple(field.start[axis] + position[axis] * field.jump[axis] for axis in range(2))
    return position, centre


def tuning_curves(model: nn.Module, layer: str, kind: str, count: int = 36, curvature: float = 0.1,
                  input_shape=None, foreground=1.0, background=0.0, **drawing) -> TuningCurves:
    """Responses of every unit of `layer` (at the centred unit) to `kind` swept over `count` angles."""
    input_shape = model_input_shape(model, input_shape)
    position, centre = centre_unit(model, layer, input_shape)
    angles, stimuli = orientation_sweep(kind, tuple(input_shape[1:]), count, curvature, input_shape[0],
                                        centre, foreground, background, **drawing)
    _, activations = run_with_cache(model, stimuli.to(model_device(model)), [layer])
    responses = activations[layer][:, :, position[0], position[1]].T.cpu()
    return TuningCurves(layer, kind, angles, responses, position, stimuli)


def response_at(curves: TuningCurves, angles_degrees: torch.Tensor) -> torch.Tensor:
    """Each unit's response at its own angle (units,), read at the nearest sampled angle."""
    step = 360.0 / len(curves.angles)
    index = torch.round((angles_degrees % 360) / step).long() % len(curves.angles)
    return curves.responses.gather(1, index[:, None])[:, 0]


def orientation_selectivity(curves: TuningCurves) -> Selectivity:
    """Preferred orientation (the circular mean of the rectified responses within an eighth of a
    period of the peak) and the orientation selectivity index
    (R_preferred - R_orthogonal) / (R_preferred + R_orthogonal), orthogonal = preferred +- 90 degrees."""
    period = PERIOD_DEGREES[curves.kind]
    responses = curves.responses.double().clamp_min(0)
    peak_angle = curves.angles[responses.argmax(1)].double()
    offset = (curves.angles.double()[None] - peak_angle[:, None] + period / 2) % period - period / 2
    weights = responses * (offset.abs() <= period / 8)
    radians = offset * (2 * math.pi / period)
    mean_offset = torch.atan2((weights * radians.sin()).sum(1), (weights * radians.cos()).sum(1))
    mean_offset = mean_offset * (period / (2 * math.pi))
    preferred = (peak_angle + mean_offset) % 360
    best = response_at(curves, peak_angle).double().clamp_min(0)
    orthogonal = 0.5 * (response_at(curves, peak_angle + 90) + response_at(curves, peak_angle - 90))
    orthogonal = orthogonal.double().clamp_min(0)
    selectivity = (best - orthogonal) / (best + orthogonal).clamp_min(1e-12)
    return Selectivity(preferred.float(), selectivity.float(), curves.responses.max(1).values)


@dataclass
class DetectorFamily:
    layer: str
    units: list[int]                     # labelled units, ordered by preferred orientation
    kinds: list[str]                     # "curve" or "edge", per labelled unit
    preferred: torch.Tensor              # (len(units),) degrees
    selectivity: torch.Tensor            # (len(units),)
    coverage: dict[str, float]           # per kind: fraction of orientation bins with a unit
    curves: dict[str, TuningCurves] = field(default_factory=dict)


def orientation_coverage(preferred_degrees: torch.Tensor, bins: int = 8) -> float:
    """Fraction of `bins` equal sectors of the circle (centred on 0, 360/bins, ...) that hold at
    least one preferred angle: 1.0 when the family tiles every orientation."""
    if len(preferred_degrees) == 0:
        return 0.0
    width = 360 / bins
    occupied = (((preferred_degrees + width / 2) % 360) // width).long().unique()
    return len(occupied) / bins


def label_units(edge: Selectivity, line: Selectivity, curve: Selectivity, min_selectivity: float,
                min_relative_peak: float, min_curve_preference: float) -> list[str | None]:
    """'curve' for selective units that prefer curves to straight lines, 'edge' for selective edge
    units, None otherwise; weak units (below a fraction of the layer's best) are left out."""
    labels = []
    curve_floor = min_relative_peak * curve.peak.max().clamp_min(1e-12)
    edge_floor = min_relative_peak * edge.peak.max().clamp_min(1e-12)
    for unit in range(len(edge.peak)):
        prefers_curves = curve.peak[unit] >= min_curve_preference * line.peak[unit].clamp_min(1e-12)
        if (curve.selectivity[unit] >= min_selectivity and curve.peak[unit] >= curve_floor
                and prefers_curves):
            labels.append("curve")
        elif edge.selectivity[unit] >= min_selectivity and edge.peak[unit] >= edge_floor:
            labels.append("edge")
        else:
            labels.append(None)
    return labels


def find_detector_family(model: nn.Module, layer: str, count: int = 36,
                         curvatures: tuple[float, ...] = (0.08, 0.12, 0.16), min_selectivity: float = 0.4,
                         min_relative_peak: float = 0.2, min_curve_preference: float = 1.2, bins: int = 8,
                         input_shape=None) -> DetectorFamily:
    """Sweep edges, lines and curves; label orientation-selective edge and curve detectors.

    A unit's curve tuning is its best response over the curvatures at each orientation, so a
    detector of tighter or gentler curves than one fixed stimulus is still found."""
    curves = {kind: tuning_curves(model, layer, kind, count, input_shape=input_shape) for kind in ("edge", "line")}
    by_curvature = [tuning_curves(model, layer, "curve", count, c, input_shape) for c in curvatures]
    curves["curve"] = by_curvature[0]
    curves["curve"].responses = torch.stack([c.responses for c in by_curvature]).max(0).values
    chosen = {kind: orientation_selectivity(c) for kind, c in curves.items()}
    labels = label_units(chosen["edge"], chosen["line"], chosen["curve"], min_selectivity,
                         min_relative_peak, min_curve_preference)
    units = [u for u, label in enumerate(labels) if label is not None]
    preferred = torch.tensor([float(chosen[labels[u]].preferred[u]) for u in units])
    selectivity = torch.tensor([float(chosen[labels[u]].selectivity[u]) for u in units])
    order = preferred.argsort() if units else torch.zeros(0, dtype=torch.long)
    units = [units[i] for i in order.tolist()]
    kinds = [labels[u] for u in units]
    preferred, selectivity = preferred[order], selectivity[order]
    coverage = {kind: orientation_coverage(preferred[[k == kind for k in kinds]], bins)
                for kind in ("edge", "curve")}
    return DetectorFamily(layer, units, kinds, preferred, selectivity, coverage, curves)
