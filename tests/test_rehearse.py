"""`make rehearse`: speaking-time plan per slide, budgets from frontmatter, and saved runs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from decktools.markdown import read_deck
from decktools.rehearse import clock, parse_seconds, plan_deck, report

REPO = Path(__file__).resolve().parent.parent
DECK = """---
title: Rehearsal
duration: 2min
---

# Opening

<!--
one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty
-->

---
budget: 45
---

# Fixed budget

<!--
short
-->

---
layout: section
---

# Part two

---
hide: true
---

# Hidden, not planned

---

# Long

<!--
{long}
-->
""".replace("{long}", " ".join(["word"] * 130))


@pytest.fixture
def deck(tmp_path):
    path = tmp_path / "talk.md"
    path.write_text(DECK)
    return path


def test_plan_counts_note_words_and_honours_budgets(deck):
    plans = plan_deck(read_deck(deck), words_per_minute=60)
    assert [p.number for p in plans] == [1, 2, 3, 4]                    # the hidden slide is left out
    assert [p.words for p in plans] == [20, 1, 0, 130]
    assert [round(p.seconds) for p in plans] == [20, 45, 15, 130]     # 20 words at 60 wpm; budget; minimum
    assert plans[1].budget_given and not plans[0].budget_given
    assert [p.section for p in plans] == ["Opening", "Opening", "Part two", "Part two"]


def test_report_flags_the_section_past_the_duration_and_slow_runs(deck):
    parsed = read_deck(deck)
    plans = plan_deck(parsed, words_per_minute=60)
    text, flags = report(parsed, plans, [{1: 20, 2: 60, 3: 100, 4: 40}])
    assert "section 'Part two' runs past the deck's duration 2:00" in flags
    # Opening ran 1:20 against 1:05 planned and is flagged; Part two's 2:20 against 2:25 is on time
    assert [f for f in flags if f.startswith("run1:")] == [
        "run1: section 'Opening' took 1:20 against 1:05 planned"]
    assert "over: run1: section 'Opening' took 1:20 against 1:05 planned" in text.splitlines()
    assert "plan: 3:30 for 4 slides against duration 2:00" in text


def test_durations_and_clock():
    assert parse_seconds("40min") == 2400 and parse_seconds("1.5h") == 5400 and parse_seconds(90) == 90
    assert parse_seconds("40", default_unit="min") == 2400
    assert clock(59.6) == "1:00" and clock(119.4) == "1:59"
    with pytest.raises(ValueError, match="cannot read"):
        parse_seconds("soon")


def test_command_reads_saved_runs_and_rejects_bad_files(deck, tmp_path):
    run = tmp_path / "talk-1.json"
    run.write_text(json.dumps({"deck": "talk", "slides": {"1": 25.0, "4": 99.0}}))
    result = subprocess.run([sys.executable, "-m", "decktools.rehearse", str(deck), "--wpm", "60", "--runs", str(run)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "run1" in result.stdout and "1:39" in result.stdout
    run.write_text("{}")
    bad = subprocess.run([sys.executable, "-m", "decktools.rehearse", str(deck), "--runs", str(run)],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "not a rehearsal file" in bad.stderr


def test_the_rehearsals_folder_runs_are_read_and_every_other_file_is_named_with_why(deck, tmp_path):
    folder = tmp_path / "rehearsals"
    folder.mkdir()
    run = {"deck": "talk", "slides": {"1": 25.0, "4": 99.0}}
    (folder / "talk-2026-12-07T10-00.json").write_text(json.dumps(run))     # as presenter mode names it
    (folder / "run1.json").write_text(json.dumps(run))
    (folder / "slides-2026.json").write_text(json.dumps({**run, "deck": "slides"}))
    (folder / "notes.txt").write_text("went long on part two")
    result = subprocess.run([sys.executable, "-m", "decktools.rehearse", str(deck), "--wpm", "60"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and " run1" in result.stdout and " run2" not in result.stdout
    assert result.stderr.splitlines() == [
        f"rehearse: ignored {folder / 'notes.txt'}: not a saved run (a .json file from presenter mode)",
        f"rehearse: ignored {folder / 'run1.json'}: only talk-*.json files are read for this deck "
        "(presenter mode saves them so): rename it talk-run1.json to compare it",
        f"rehearse: ignored {folder / 'slides-2026.json'}: a run of deck 'slides' (its \"deck\"), not of talk"]


def test_code_is_neither_title_nor_notes(tmp_path):
    """A heading-looking line in a fence is no title, a comment in code no notes (Slidev agrees)."""
    path = tmp_path / "code.md"
    path.write_text("---\nduration: 2min\n---\n\n# Opening\n\n<!--\none two three\n-->\n\n---\n\n"
                    "```markdown\n# Not the title\n```\n\n## The title `x`\n\n```html\n<!-- not notes -->\n```\n")
    plans = plan_deck(read_deck(path), words_per_minute=60)
    assert [(p.title, p.words) for p in plans] == [("Opening", 3), ("The title `x`", 0)]
