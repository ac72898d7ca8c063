"""The superposition figure functions run end to end with tiny parameters: images written, numbers
JSON-serialisable the way the runner writes them, and the numbers the slides quote present."""
import json
from pathlib import Path

import pytest
import torch

import figures_src.superposition as figures
from figures_src.context import FigureContext
from figures_src.runner import to_jsonable
from figures_src.style import apply_style

ZOO_CONFIG = Path(__file__).resolve().parents[1] / "models" / "zoo.yaml"
TINY_TRAIN = {"steps": 30, "batch_size": 64, "lr": 2e-2, "lr_schedule": "cosine", "replicas": 2}


def run_figure(figure_id: str, params: dict, tmp_path, models_dir=None) -> dict:
    ctx = FigureContext(figure_id, params, "quick", torch.device("cpu"), tmp_path,
                        models_dir or tmp_path / "models")
    numbers = getattr(figures, figures.FIGURES[figure_id]["make"])(ctx)
    json.dumps(to_jsonable(numbers), allow_nan=False)
    assert (tmp_path / f"{ctx.name}.png").stat().st_size > 10_000
    return numbers


def test_toy_model_figures(tmp_path):
    intro = run_figure("superposition/intro-geometry", {"sparsities": [0.0, 0.9], "train": TINY_TRAIN}, tmp_path)
    assert len(intro["embedded"]) == 2 and len(intro["feature_dimensionality"][0]) == 5
    phase = run_figure("superposition/phase-diagram", {"grid": 3, "train": TINY_TRAIN}, tmp_path)
    assert phase["models_trained"] == 18 and sum(phase["phase_counts"].values()) == 9
    dims = run_figure("superposition/dims-per-feature", {"n_features": 6, "n_hidden": 2, "points": 3,
                                                         "max_inverse_density": 10, "train": TINY_TRAIN},
                      tmp_path)
    assert len(dims["dimensions_per_feature"]) == 3


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    from mechinterp.models.zoo import train_zoo
    models_dir = tmp_path_factory.mktemp("models")
    train_zoo(ZOO_CONFIG, models_dir, names=[figures.SAE_MODEL], device="cpu")
    return models_dir


def test_sae_figures_on_the_zoo_model(tmp_path, zoo_dir):
    numbers = run_figure("superposition/polysemantic-vs-sae",
                         {"layer": "relu1", "latents": 64, "l1": 0.3, "steps": 100, "top_k": 8,
                          "shown": 4, "features": 2, "featvis_steps": 4}, tmp_path, zoo_dir)
    assert 0 <= numbers["neuron"]["purity"] <= 1 and numbers["sae"]["clean_accuracy"] > 0.8
    metrics = run_figure("superposition/sae-metrics",
                         {"layer": "relu1", "latents": 64, "ks": [2, 4], "l1": [0.1], "steps": 50,
                          "quoted_k": 4}, tmp_path, zoo_dir)
    assert metrics["quoted_topk"]["setting"] == 4 and len(metrics["runs"]) == 3
