"""Picking the inputs a figure or an experiment is about: examples of a class that the model gets
right, and the unit of a layer that tells one class apart best.

    picks = one_per_class(model, images, labels, class_names, ["arc", "cross"])   # dataset indices
    chosen = correctly_classified(model, images, labels, class_index=2, count=8)  # images
    selectivity = class_selectivity(unit_values, labels, class_index=2)           # (units,) d'

Every choice is deterministic (the first in dataset order), so a figure shows the same inputs
on every run.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mechinterp.device import model_device


def _logits(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    device = model_device(model)
    with torch.no_grad():
        return torch.cat([model(images[start:start + batch_size].to(device)).cpu()
                          for start in range(0, len(images), batch_size)])


def one_per_class(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  class_names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """For each wanted class, the index of its first correctly classified image (else of the
    member the model scores highest for that class)."""
    logits, labels = _logits(model, images), torch.as_tensor(labels).cpu()
    picks = []
    for name in wanted:
        if name not in class_names:
            raise ValueError(f"no class {name!r}: the classes are {list(class_names)}")
        index = list(class_names).index(name)
        members = torch.nonzero(labels == index).flatten()
        if len(members) == 0:
            raise ValueError(f"no {name!r} image among {len(images)}; raise 'images' in the params")
        correct = members[logits[members].argmax(1) == index]
        picks.append(int(correct[0]) if len(correct) else int(members[logits[members, index].argmax()]))
    return picks


def correctly_classified(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                         class_index: int, count: int) -> torch.Tensor:
    """Up to `count` images of the class that the model gets right (at least one, or an error)."""
    predicted = _logits(model, images).argmax(1).to(labels.device)
    chosen = torch.nonzero((labels == class_index) & (predicted == labels)).flatten()[:count]
    if len(chosen) == 0:
        raise ValueError(f"no correctly classified image of class {class_index} among "
                         f"{len(images)}; raise 'images' in the figure's params")
    return images[chosen]


def class_selectivity(values: torch.Tensor, labels: torch.Tensor, class_index: int) -> torch.Tensor:
    """Per unit (columns of `values`, one row per image): (mean on the class − mean on the rest)
    divided by the pooled standard deviation (the two groups' variances averaged): Cohen's d."""
    inside, outside = values[labels == class_index], values[labels != class_index]
    spread = torch.sqrt((inside.var(0) + outside.var(0)) / 2).clamp(min=1e-6)
    return (inside.mean(0) - outside.mean(0)) / spread


def most_selective_unit(values: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                        candidates: Sequence[str]) -> tuple[str, int, float]:
    """(class, unit, selectivity): over the candidate classes the dataset has, the unit (a column
    of `values`) with the largest class selectivity, and the class it is selective for."""
    best = None
    for name in (name for name in candidates if name in class_names):
        selectivity = class_selectivity(values, labels, list(class_names).index(name))
        unit = int(selectivity.argmax())
        if best is None or selectivity[unit] > best[2]:
            best = (name, unit, float(selectivity[unit]))
    if best is None:
        raise ValueError(f"the dataset has none of the classes {list(candidates)}: {list(class_names)}")
    return best
