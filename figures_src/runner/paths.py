"""Where the runner finds and puts things by default (every one can be changed by an option).

    REPO_ROOT      the repository: figures_src/, mechinterp/, talk/, models/
    SCRIPTS_DIR    the figure scripts (figures_src/: the modules that declare FIGURES)
    FIGURES_DIR    talk/public/figures/: the made figures and their manifest.json
    MODELS_DIR     models/: zoo.yaml and the trained checkpoints
    STAGING_ROOT   .figure-staging/: workers' private output folders and the discovery cache
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "figures_src"
FIGURES_DIR = REPO_ROOT / "talk" / "public" / "figures"
MODELS_DIR = REPO_ROOT / "models"
STAGING_ROOT = REPO_ROOT / ".figure-staging"
RUNNER_DIR = Path(__file__).resolve().parent
