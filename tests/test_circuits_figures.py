"""The workshop's key-value figures, run end to end on a digits MLP the zoo trains here.

Checks what the figures claim: the pairs rebuild the network's logits, the calculation's last row
is the forward pass, and the mistake's culprit really flips the answer when silenced.
"""
import json
from pathlib import Path

import pytest
import torch

import figures_src.circuits as circuits
from figures_src.context import FigureContext
from figures_src.runner import to_jsonable

ZOO = """models:
  digits-mlp:
    architecture: MLP
    kwargs: {hidden: 32, classes: 10, input_shape: [1, 8, 8]}
    dataset: digits
    seed: 0
    epochs: 15
    batch_size: 32
    learning_rate: 0.003
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from mechinterp.models.zoo import train_zoo
    folder = tmp_path_factory.mktemp("zoo")
    (folder / "zoo.yaml").write_text(ZOO)
    train_zoo(folder / "zoo.yaml", folder / "models", ["digits-mlp"], device="cpu")
    return folder / "models"


def run_figure(figure_id, models_dir, staging):
    spec = circuits.FIGURES[figure_id]
    context = FigureContext(figure_id, spec.get("params", {}), "quick", torch.device("cpu"),
                            staging, models_dir)
    numbers = getattr(circuits, spec["make"])(context)
    json.dumps(to_jsonable(numbers), allow_nan=False)    # the runner must be able to write it
    assert (staging / f"{context.name}.png").stat().st_size > 10_000
    return numbers


def test_keys_figure_rebuilds_the_logits(models_dir, tmp_path):
    numbers = run_figure("circuits/kv-keys", models_dir, tmp_path)
    assert numbers["units"] == 32 and numbers["accuracy"] > 0.85
    assert numbers["max_logit_error"] < 1e-4


def test_correct_and_calculation_figures_add_up(models_dir, tmp_path):
    correct = run_figure("circuits/kv-correct", models_dir, tmp_path)
    assert 0 < correct["top_share"] <= 1
    calculation = run_figure("circuits/kv-calculation", models_dir, tmp_path)
    assert calculation["predicted"] == calculation["digit"]
    assert calculation["max_error_vs_forward"] < 1e-4
    rebuilt = torch.tensor([step["contribution"] for step in calculation["steps"]]).sum(0) \
        + torch.tensor(calculation["rest_contribution"]) + torch.tensor(calculation["output_bias"])
    assert torch.allclose(rebuilt, torch.tensor(calculation["logits"]), atol=1e-4)


def test_wrong_figure_names_a_culprit_that_really_flips_the_answer(models_dir, tmp_path):
    numbers = run_figure("circuits/kv-wrong", models_dir, tmp_path)
    assert numbers["true_class"] != numbers["predicted_class"] and numbers["margin"] > 0
    pushed = sum(p["contribution"] for p in numbers["pushers"])
    assert 0 < pushed and numbers["pushers"][0]["contribution"] == numbers["top_pusher_margin"]
    needed = numbers["pushers_silenced_to_fix"]
    if needed is not None:
        assert numbers["predictions_after_silencing_top_pushers"][needed - 1] == numbers["true_class"]
    if numbers["margin_without_top_pusher"] > 0:
        assert numbers["predictions_after_silencing_top_pushers"][0] != numbers["true_class"]
