"""Shared pytest fixtures.

trained_zoo: the repository's default zoo (models/zoo.yaml), trained into models/ once per test
session if missing or stale (a no-op when `make models` already ran), so tests and the deck build
share the same checkpoints. Tests that need a zoo model take this fixture and load from the
returned folder:

    def test_something(trained_zoo):
        model = load_model("shapes-cnn-a", trained_zoo, device="cpu")
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
ZOO_CONFIG = MODELS_DIR / "zoo.yaml"


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """Tests use tiny tensors, where a second thread costs more than it gives (and CI shares cores)."""
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained_zoo() -> Path:
    """The repo's models/ folder with every default zoo model trained and up to date."""
    from mechinterp.models.zoo import train_zoo
    train_zoo(ZOO_CONFIG, MODELS_DIR, device="cpu")
    return MODELS_DIR
