"""Picking inputs and units (mechinterp.examples), against hand-built models and numpy."""
import numpy as np
import pytest
import torch
from torch import nn

from mechinterp.examples import (class_selectivity, correctly_classified, most_selective_unit,
                                 one_per_class)

CLASSES = ["a", "b", "c"]


def fixed_classifier():
    """Logits = the input's three values: the predicted class is its largest coordinate."""
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    return model.eval()


def test_one_per_class_prefers_the_first_correct_image_else_the_best_scored():
    images = torch.tensor([[0., 1, 0],    # class a, predicted b
                           [1., 0, 0],    # class a, correct
                           [0., 2, 0],    # class b, correct
                           [5., 0, 1],    # class c, predicted a, c-logit 1
                           [0., 9, 3]])   # class c, predicted b, c-logit 3: the best-scored c
    labels = torch.tensor([0, 0, 1, 2, 2])
    assert one_per_class(fixed_classifier(), images, labels, CLASSES, ["a", "b", "c"]) == [1, 2, 4]
    with pytest.raises(ValueError, match="no class 'd'"):
        one_per_class(fixed_classifier(), images, labels, CLASSES, ["d"])


def test_correctly_classified_keeps_dataset_order_and_refuses_when_none():
    images = torch.tensor([[1., 0, 0], [0., 1, 0], [2., 0, 0], [3., 0, 0], [0., 0, 1]])
    labels = torch.tensor([0, 0, 0, 0, 1])
    chosen = correctly_classified(fixed_classifier(), images, labels, class_index=0, count=2)
    assert torch.equal(chosen, images[[0, 2]])
    with pytest.raises(ValueError, match="no correctly classified image of class 1"):
        correctly_classified(fixed_classifier(), images, labels, class_index=1, count=2)


def test_class_selectivity_is_cohens_d_as_numpy_computes_it():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 4))
    labels = rng.integers(0, 3, 60)
    values[labels == 1, 2] += 3.0
    inside, outside = values[labels == 1], values[labels != 1]
    pooled = np.sqrt((inside.var(0, ddof=1) + outside.var(0, ddof=1)) / 2)
    expected = (inside.mean(0) - outside.mean(0)) / pooled
    found = class_selectivity(torch.tensor(values), torch.tensor(labels), 1)
    np.testing.assert_allclose(found.numpy(), expected, rtol=1e-10)
    name, unit, selectivity = most_selective_unit(torch.tensor(values), torch.tensor(labels), CLASSES,
                                                  ["missing", "b", "c"])
    assert (name, unit) == ("b", 2) and selectivity == pytest.approx(expected[2])
    with pytest.raises(ValueError, match="none of the classes"):
        most_selective_unit(torch.tensor(values), torch.tensor(labels), CLASSES, ["x"])
