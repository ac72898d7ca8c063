"""bench/reference_pins.py: the Makefile's decision where TransformerLens goes, on pip's real
installation report format (a dry run's `install` list)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def report(*packages):
    return json.dumps({"version": "1", "install": [{"metadata": {"name": name, "version": version}}
                                                   for name, version in packages]})


def run_pins(text):
    return subprocess.run([sys.executable, "-m", "bench.reference_pins"], input=text, text=True,
                          capture_output=True, cwd=REPO)


def test_an_install_that_keeps_torch_and_numpy_goes_into_the_main_venv():
    result = run_pins(report(("transformer-lens", "3.5.1"), ("einops", "0.8.2")))
    assert result.returncode == 0 and result.stderr == ""


def test_an_install_that_changes_numpy_gets_a_venv_of_its_own():
    result = run_pins(report(("transformer-lens", "3.5.1"), ("numpy", "1.26.4")))
    assert result.returncode == 1 and "numpy 1.26.4" in result.stderr
