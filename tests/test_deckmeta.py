"""Presenter provenance: what made each figure, and whether its inputs changed since.

Figures are made by the real runner over scripts in a temporary folder; the provenance that
presenter mode shows must match the manifest and flag a figure stale after its script changes.
"""
import json

from decktools.deckmeta import figure_provenance, figures_on_slides
from decktools.markdown import read_deck
from tests.test_runner import ALPHA, run_runner, workspace  # noqa: F401  (fixture)


def test_provenance_matches_manifest_and_flags_stale(workspace):
    scripts, figures, models = workspace
    assert run_runner(workspace).returncode == 0
    fresh = figure_provenance({"alpha/one", "alpha/two"}, figures, models, scripts)
    manifest = json.loads((figures / "manifest.json").read_text())["figures"]
    assert fresh["alpha/one"]["stale"] is False and fresh["alpha/one"]["why"] is None
    assert fresh["alpha/two"]["models"] == {"m1": manifest["alpha/two"]["inputs"]["models"]["m1"]["checkpoint"][:12]}
    assert fresh["alpha/one"]["profile"] == "quick"          # so is the command that remakes it
    assert fresh["alpha/one"]["command"] == "make figures ONLY='alpha/one' PROFILE=quick FORCE=1"
    assert fresh["alpha/one"]["ran_on"] == manifest["alpha/one"]["ran_on"]
    assert fresh["alpha/one"]["ran_on"]["worker"] == "local" and fresh["alpha/one"]["ran_on"]["device"] == "cpu"
    # the runner records quick-profile outputs; provenance re-hashes with that same profile
    (scripts / "alpha.py").write_text(ALPHA.replace('ax.plot(range(ctx.params["n"]))',
                                                    'ax.plot(list(range(ctx.params["n"])))'))
    changed = figure_provenance({"alpha/one", "alpha/two"}, figures, models, scripts)
    assert changed["alpha/one"]["stale"] is True and "script" in changed["alpha/one"]["why"]
    assert changed["alpha/two"]["stale"] is False          # its own code did not change
    missing = figure_provenance({"gamma/none"}, figures, models, scripts)
    assert missing["gamma/none"]["stale"] is True


def test_a_script_that_does_not_parse_leaves_the_other_scripts_provenance(workspace):
    scripts, figures, models = workspace
    assert run_runner(workspace).returncode == 0
    (scripts / "mylab.py").write_text('FIGURES = {"mylab/x": {"make": "f"}}\ndef broken(:\n')
    shown = figure_provenance({"alpha/one"}, figures, models, scripts)
    assert shown["alpha/one"]["stale"] is False and shown["alpha/one"]["why"] is None


def test_figures_on_slides_by_number(tmp_path):
    deck = tmp_path / "deck.md"
    deck.write_text("---\ntitle: x\n---\n\n# One\n\n---\nhide: true\n---\n\n![](/figures/a/hidden.png)\n\n---\n\n"
                    "# Three\n\n![](/figures/zoo/accuracy.png) <img src=\"/figures/featvis/grid.png\"/>\n")
    assert figures_on_slides(read_deck(deck)) == {2: ["zoo/accuracy", "featvis/grid"]}


def test_figures_by_reference_count_and_figures_in_code_do_not(tmp_path):
    deck = tmp_path / "deck.md"
    deck.write_text("---\ntitle: x\n---\n\n# One\n\n![grid][g] `![](/figures/a/code.png)`\n\n"
                    "```md\n![](/figures/a/fenced.png)\n```\n\n[g]: /figures/featvis/grid.png\n")
    assert figures_on_slides(read_deck(deck)) == {1: ["featvis/grid"]}


def test_a_slide_that_only_quotes_a_measured_number_lists_its_figure(tmp_path):
    """The number has provenance and a stale flag in the panel, like an image."""
    deck = tmp_path / "deck.md"
    deck.write_text("---\ntitle: x\n---\n\n# Accuracy\n\n<Measured fig=\"lab/ig\" value=\"test_accuracy\"/> and "
                    "<Measured fig='lab/ig' value='gap'/>\n\n---\n\n# Both\n\n![](/figures/lab/ig.png) "
                    "<Measured fig=\"lab/layers\" value=\"cka\"/>\n\n---\n\n`<Measured fig=\"a/code\" value=\"x\"/>`\n")
    assert figures_on_slides(read_deck(deck)) == {1: ["lab/ig"], 2: ["lab/ig", "lab/layers"]}
