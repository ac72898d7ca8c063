"""The talks themselves: finished, cited and rehearsable, read straight from talk/*.md.

No placeholder diagrams, no capitalised notes to self, no remote URLs, speaker notes on every
slide, every figure from a figure script, and a rehearsal plan that fits the stated duration.
(That the decks build, render and pass `make check` with no warnings is in test_deck_e2e.py.)
"""
import re
from pathlib import Path

import pytest

from decktools.markdown import read_deck
from decktools.references import assets
from decktools.rehearse import parse_seconds, plan_deck, slide_notes
from figures_src.runner import discover_figures

REPO = Path(__file__).resolve().parent.parent
DECKS = [REPO / "talk" / "slides.md", REPO / "talk" / "workshop.md", REPO / "talk" / "course.md"]
SHOUTING = re.compile(r"\b[A-Z]{3,}(?:\s+[A-Z]{2,}){2,}\b")        # three capitalised words in a row
PLACEHOLDER = re.compile(r"^\s*\((?:diagram|image|figure|picture|placeholder)\b|\bTODO\b|\bTBD\b|\bFIXME\b", re.I)
ALLOWED_CAPS = {"SAE", "SAES", "CKA", "TCAV", "CNN", "MLP", "PGD", "FGSM", "IOI", "ICA", "PCA", "RELU"}


def deck_lines(deck_path):
    deck = read_deck(deck_path)
    for slide in deck.slides:
        for number, text in slide.body:
            yield slide.path, number, text


@pytest.mark.parametrize("deck_path", DECKS, ids=lambda p: p.name)
def test_no_placeholders_notes_to_self_or_remote_urls(deck_path):
    problems = []
    for path, number, text in deck_lines(deck_path):
        words = [w for w in SHOUTING.findall(text) if not set(w.split()) <= ALLOWED_CAPS]
        if words or PLACEHOLDER.search(text):
            problems.append(f"{path.name}:{number}: {text.strip()[:80]}")
        if re.search(r"https?://", text):
            problems.append(f"{path.name}:{number}: remote URL: {text.strip()[:80]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("deck_path", DECKS, ids=lambda p: p.name)
def test_every_slide_has_speaker_notes(deck_path):
    deck = read_deck(deck_path)
    missing = [f"{s.path.name}:{s.start_line}" for s in deck.visible_slides
               if s.frontmatter.get("layout") != "biblio" and len(slide_notes(s).split()) < 5]
    assert not missing, f"slides without speaker notes: {missing}"


@pytest.mark.parametrize("deck_path", DECKS, ids=lambda p: p.name)
def test_every_figure_on_a_slide_comes_from_a_figure_script(deck_path):
    declared = discover_figures(REPO / "figures_src", REPO)
    shown = {m.group(1) for ref in assets(read_deck(deck_path))
             if (m := re.match(r"^/?figures/(.+)\.(png|svg|jpg)$", ref.target))}
    assert shown, "the deck shows no generated figure"
    assert shown <= set(declared), f"figures no script declares: {sorted(shown - set(declared))}"


@pytest.mark.parametrize("deck_path", DECKS, ids=lambda p: p.name)
def test_deck_plan_fits_its_duration(deck_path):
    deck = read_deck(deck_path)
    duration = parse_seconds(deck.headmatter["duration"], default_unit="min")
    planned = sum(plan.seconds for plan in plan_deck(deck, words_per_minute=130))
    assert abs(planned / duration - 1) <= 0.10, f"plan {planned / 60:.1f} min against {duration / 60:.0f} min"
