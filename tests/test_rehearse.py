"""`make rehearse`: speaking-time plan per slide, budgets from frontmatter, and saved runs."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from decktools.markdown import read_deck
from decktools.rehearse import Run, clock, panel_name, parse_seconds, plan_deck, report, slidev_seconds, timing_problems

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
    text, flags = report(parsed, plans, [Run(Path("rehearsals/talk-1.json"), {1: 20, 2: 60, 3: 100, 4: 40})])
    assert "section 'Part two' runs past the deck's duration 2:00" in flags
    # Opening ran 1:20 against 1:05 planned and is flagged; Part two's 2:20 against 2:25 is on time
    assert [f for f in flags if f.startswith("run1:")] == [
        "run1: section 'Opening' took 1:20 against 1:05 planned"]
    assert "over: run1: section 'Opening' took 1:20 against 1:05 planned" in text.splitlines()
    assert "plan: 3:30 for 4 slides against duration 2:00" in text
    assert "run1 = rehearsals/talk-1.json" in text.splitlines()            # the column's file, under the table


def test_a_deck_without_sections_is_one_section_named_by_its_title(deck):
    """Trial O's own short deck, with no section slides, was timed as one section called 'Opening'."""
    deck.write_text(DECK.replace("layout: section", "layout: default"))
    parsed = read_deck(deck)
    plans = plan_deck(parsed, words_per_minute=60)
    assert {p.section for p in plans} == {"Rehearsal"}
    text, flags = report(parsed, plans, [])
    assert flags == ["section 'Rehearsal' runs past the deck's duration 2:00"]
    untitled = DECK.replace("title: Rehearsal\n", "").replace("# Opening", "# Welcome")
    deck.write_text(untitled.replace("layout: section", "layout: default"))
    assert {p.section for p in plan_deck(read_deck(deck), words_per_minute=60)} == {"Welcome"}  # its first slide's


def test_a_plan_well_short_of_the_duration_says_what_it_counts_and_what_to_add(deck):
    """A 45-minute workshop whose slides have few notes planned 4:31 (-90%) with no hint why."""
    deck.write_text(DECK.replace("duration: 2min", "duration: 45min").replace(
        "# Long", "# Interpretability 101: reading a neural network's features"))
    parsed = read_deck(deck)
    text, flags = report(parsed, plan_deck(parsed, words_per_minute=130), [])   # 20 words: under the minimum
    assert flags == [] and text.splitlines()[-2] == (
        "short: the plan counts only the words of the notes; 2 of 3 slides without `budget:` count the minimum, "
        "15 s (1 with no notes, the others with notes read in less); give the slides you will talk over a "
        "`budget: 3min` in their frontmatter, or write their notes")
    assert "Interpretability 101: reading a neural …" in text          # cut where shown, not silently
    deck.write_text(DECK)
    parsed = read_deck(deck)
    assert "short:" not in report(parsed, plan_deck(parsed, words_per_minute=60), [])[0]


def test_durations_and_clock():
    assert parse_seconds("40min") == 2400 and parse_seconds("1.5h") == 5400 and parse_seconds(90) == 90
    assert parse_seconds("40", default_unit="min") == 2400
    assert clock(59.6) == "1:00" and clock(119.4) == "1:59"
    with pytest.raises(ValueError, match="cannot read"):
        parse_seconds("soon")


@pytest.mark.parametrize("text, seconds", [("40 mins", 2400), ("40 minutes", 2400), ("1h30m", 5400),
                                           ("1h 30min", 5400), ("90 sec", 90), ("1:30", 90), ("1:00:05", 3605)])
def test_common_spellings_of_a_duration_are_read(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["ninety", "40 minuets", "1h30", "40min later", "", "1.5.2h"])
def test_a_typo_is_no_duration(text):
    with pytest.raises(ValueError, match="cannot read"):
        parse_seconds(text)


@pytest.mark.parametrize("edit, where", [
    (("budget: 45", "budget: ninety"), ":14:1: error: budget: cannot read 'ninety' as a duration"),
    (("duration: 2min", "duration: 40 mins"), ":3:1: error: duration: Slidev's presenter timer cannot read"),
    (("duration: 2min", "duration: 45"), ":3:1: error: duration: 45 has no unit, and Slidev's presenter timer "
     "counts a bare number as seconds: write 45min for minutes (45s if seconds are meant)")])
def test_an_unreadable_budget_or_duration_is_one_line_at_its_place_not_a_traceback(deck, edit, where):
    deck.write_text(DECK.replace(*edit))
    result = rehearse(deck)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]] and result.stderr.startswith(f"{deck}{where}")


SLIDEV_DURATIONS = ["40min", "1h30m", "1h 30m", "3mins 5secs", "10.5m3s", "+10s", "1.5h", "40MIN", "1:30", "1:00:00",
                    "10:50.1", "2hrs", "90s", "40 mins", "40minutes", "forty", "1:2:3:4", "1e3", "1.2.3m", "1:x"]


def slidev_time_strings(values: list[str]) -> list[float | None]:
    """Slidev's own parseTimeString (@slidev/parser, as the presenter timer calls it) of each
    value: its seconds, None where it throws."""
    script = ("const {parseTimeString} = await import(process.argv[1]);"
              "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(v => {"
              "try { return parseTimeString(v).seconds } catch { return null } })))")
    utils = REPO / "talk" / "node_modules" / "@slidev" / "parser" / "dist" / "utils.mjs"
    result = subprocess.run(["node", "--input-type=module", "-e", script, utils.as_uri(), json.dumps(values)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_the_duration_is_read_as_slidevs_timer_reads_it(deck):
    ours = []
    for value in SLIDEV_DURATIONS:
        try:
            ours.append(slidev_seconds(value))
        except ValueError:
            ours.append(None)
    assert ours == slidev_time_strings(SLIDEV_DURATIONS)
    deck.write_text(DECK.replace("duration: 2min", "duration: 1:30:00"))     # YAML 1.1 would read 5400
    parsed = read_deck(deck)
    assert parsed.headmatter["duration"] == "1:30:00" and timing_problems(parsed) == []
    assert "against duration 90:00" in report(parsed, plan_deck(parsed, 60), [])[0]


def test_a_bibliography_of_several_pages_moves_the_later_slides_on(deck):
    """prepare makes a `layout: biblio` slide one slide per page of entries: plan as the built deck."""
    deck.write_text(DECK.replace("---\nlayout: section", "---\nlayout: biblio\nbiblio:\n  item_per_page: 2\n---\n\n"
                                 "# References\n\n---\nlayout: section"))
    plans = plan_deck(read_deck(deck), words_per_minute=60, works=5)
    assert [(p.number, p.title, round(p.seconds)) for p in plans][2:] == [
        (3, "References", 15), (4, "References (page 2)", 0), (5, "References (page 3)", 0), (6, "Part two", 15),
        (7, "Long", 130)]
    assert [p.budget_given for p in plans[2:5]] == [False] * 3     # no '*' ("budget from frontmatter")
    assert [p.number for p in plan_deck(read_deck(deck), words_per_minute=60, works=0)] == [1, 2, 3, 4, 5]


def test_times_for_slides_the_deck_does_not_have_are_reported_not_dropped(deck):
    parsed = read_deck(deck)
    run = Run(Path("rehearsals/talk-1.json"), {1: 20, 4: 40, 5: 300, 9: 10})
    text, _ = report(parsed, plan_deck(parsed, words_per_minute=60), [run])
    assert ("run1: slides 5, 9 not in the deck (4 slides, numbered as the built deck): 5:10 left out of the "
            "table; the deck changed since this run, or fix rehearsals/talk-1.json") in text.splitlines()


def rehearse(*args):
    return subprocess.run([sys.executable, "-m", "decktools.rehearse", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True)


def test_command_reads_saved_runs_and_leaves_out_bad_files_with_the_plan_printed(deck, tmp_path):
    run = tmp_path / "talk-1.json"
    run.write_text(json.dumps({"deck": "talk", "slides": {"1": 25.0, "4": 99.0}}))
    result = rehearse(deck, "--wpm", "60", "--runs", run)
    assert result.returncode == 0 and "run1" in result.stdout and "1:39" in result.stdout
    run.write_text("{}")
    bad = rehearse(deck, "--runs", run)
    assert bad.returncode == 0 and "plan: " in bad.stdout and " run1" not in bad.stdout
    assert bad.stderr.startswith(f'rehearse: ignored {run}: no "slides"')
    none = rehearse(deck)                                 # no rehearsals/ folder: how to save a run
    assert none.stdout.splitlines()[-1] == (
        f"runs: none in {tmp_path / 'rehearsals'}/; rehearse in presenter mode (`make dev`, then /presenter), "
        f"press the panel's save button, and put the file it downloads (talk-<time>.json) in "
        f"{tmp_path / 'rehearsals'}/ (make the folder)")
    broken = rehearse(tmp_path / "missing.md", "--runs", run)             # only a broken deck fails
    assert broken.returncode == 1 and broken.stderr.startswith(f"{tmp_path / 'missing.md'}:1:1: error: ")


def test_the_rehearsals_folder_runs_are_read_and_every_other_file_is_named_with_why(deck, tmp_path):
    folder = tmp_path / "rehearsals"
    folder.mkdir()
    run = {"deck": "talk", "slides": {"1": 25.0, "4": 99.0}}
    (folder / "talk-2026-12-07T10-00.json").write_text(json.dumps(run))     # as presenter mode names it
    (folder / "talk-2026-12-09.json").write_text(json.dumps({**run, "slides": {"1": 31.0}}))
    (folder / "run1.json").write_text(json.dumps(run))
    (folder / "slides-2026.json").write_text(json.dumps({**run, "deck": "slides"}))
    (folder / "talk-misnamed.json").write_text(json.dumps({**run, "deck": "slides"}))
    (folder / "talk-broken.json").write_text('{"deck": "talk", "slides": {"1": 30,\n  "2" 40}}\n')
    (folder / "talk-bad-slide.json").write_text(json.dumps({"deck": "talk", "slides": {"two": 4}}))
    (folder / "notes.txt").write_text("went long on part two")
    (folder / "old").mkdir()
    result = rehearse(deck, "--wpm", "60")
    assert result.returncode == 0 and " run1   run2" in result.stdout and " run3" not in result.stdout
    assert [line for line in result.stdout.splitlines() if line.startswith("run")] == [
        f"run1 = {folder / 'talk-2026-12-07T10-00.json'}", f"run2 = {folder / 'talk-2026-12-09.json'}"]
    assert "0:31" in result.stdout
    assert result.stderr.splitlines() == [
        f"rehearse: ignored {folder / 'notes.txt'}: not a saved run (a .json file from presenter mode)",
        f"rehearse: ignored {folder / 'old'}: a folder (only the files directly in rehearsals/ are read)",
        f"rehearse: ignored {folder / 'run1.json'}: only talk-*.json files are read for this deck "
        "(presenter mode saves them so): rename it talk-run1.json to compare it",
        f"rehearse: ignored {folder / 'slides-2026.json'}: a run of deck 'slides' (its \"deck\"), not of talk",
        f"rehearse: ignored {folder / 'talk-bad-slide.json'}: \"slides\" has 'two': 4, not \"<slide number>\": "
        "<seconds>; fix that entry or save the run again from presenter mode",
        f"rehearse: ignored {folder / 'talk-broken.json'}: not JSON: line 2 column 7: Expecting ':' delimiter; "
        "fix it there or save the run again from presenter mode",
        f"rehearse: ignored {folder / 'talk-misnamed.json'}: a run of deck 'slides' (its \"deck\"), not of talk"]


def test_a_misnamed_run_is_offered_the_name_presenter_mode_gives(tmp_path):
    """`<deck>-<toISOString() with : and . as ->.json`, as talk/custom-nav-controls.vue's save() names it."""
    run = {"deck": "talk", "saved": "2026-12-07T10:00:00.000Z", "slides": {"1": 25.0}}
    (tmp_path / "talk.md").write_text(DECK)
    folder = tmp_path / "rehearsals"
    folder.mkdir()
    for name in ("talk.json", "Talk-2026-12-08.json", "talkrun3.json", "Talk.json", "talk-2026-12-08.json"):
        (folder / name).write_text(json.dumps(run if name != "Talk.json" else {**run, "saved": None}))
    os.utime(folder / "Talk.json", (1796637600, 1796637600))               # 2026-12-07T10:00:00Z
    result = rehearse(tmp_path / "talk.md")
    advice = dict(re.fullmatch(r"rehearse: ignored \S+/(\S+): .* rename it (.*)", line).groups()
                  for line in result.stderr.splitlines())
    assert advice == {"talk.json": "talk-2026-12-07T10-00-00-000Z.json to compare it",
                      "Talk-2026-12-08.json": "talk-2026-12-08.json to compare it (a file of that name is there "
                                              "already: keep one of the two)",
                      "talkrun3.json": "talk-run3.json to compare it",
                      "Talk.json": "talk-2026-12-07T10-00-00-000Z.json to compare it"}
    assert panel_name(folder / "run1.json", "talk", None) == "talk-run1.json"


def test_code_is_neither_title_nor_notes(tmp_path):
    """A heading-looking line in a fence is no title, a comment in code no notes (Slidev agrees)."""
    path = tmp_path / "code.md"
    path.write_text("---\nduration: 2min\n---\n\n# Opening\n\n<!--\none two three\n-->\n\n---\n\n"
                    "```markdown\n# Not the title\n```\n\n## The title `x`\n\n```html\n<!-- not notes -->\n```\n")
    plans = plan_deck(read_deck(path), words_per_minute=60)
    assert [(p.title, p.words) for p in plans] == [("Opening", 3), ("The title `x`", 0)]
