"""`make rehearse`: how long each slide will take, against the deck's stated duration.

    python -m decktools.rehearse talk/slides.md --wpm 130 [--runs talk/rehearsals/*.json]

Per slide: the words in its speaker notes, an estimated speaking time (words / wpm, at least
MIN_SECONDS for a slide shown at all; a `budget: 90` (seconds) or `budget: 1.5min` in the slide's
frontmatter overrides), and the cumulative time against the headmatter's `duration` (e.g. 40min).
Sections start at `layout: section` / `cover` slides and at the first slide of each imported file;
a section is flagged when the plan passes the deck's duration inside it, or when a saved
rehearsal spent more than 10% over the section's plan.

Rehearsal runs are saved from presenter mode (the pacing panel's "save" button) as JSON:
{"deck": "slides", "slides": {"3": 41.5, ...}} seconds per slide number, in a file it names
<deck>-<time>.json. The files <deck>-*.json in the deck's rehearsals/ folder (talk/rehearsals/)
are compared with the plan automatically; every other file there is named as ignored, with why
(a run of another deck, or a name to change).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from decktools.markdown import Deck, DeckError, Slide, read_deck
from decktools.mdscan import first_heading, speaker_notes

MIN_SECONDS = 15.0
OVER_TOLERANCE = 0.10
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|hours?|min|minutes?|m|s|sec|seconds?)?\s*$", re.IGNORECASE)


def parse_seconds(value, default_unit: str = "s") -> float:
    """'40min', '1.5h', '90s', 90 -> seconds."""
    match = DURATION.match(str(value))
    if not match:
        raise ValueError(f"cannot read {value!r} as a duration: write e.g. 40min, 90s or 1.5h")
    number, unit = float(match.group(1)), (match.group(2) or default_unit).lower()
    return number * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1)


@dataclass
class SlidePlan:
    number: int
    title: str
    words: int
    seconds: float
    budget_given: bool
    section: str


def slide_notes(slide: Slide) -> str:
    """The slide's speaker notes as presenter mode shows them (decktools.mdscan.speaker_notes)."""
    notes = speaker_notes(slide.body)
    return notes.text if notes else ""


def slide_title(slide: Slide) -> str:
    """The frontmatter title, else the first heading (outside code) without citations or tags,
    else the layout."""
    if slide.frontmatter.get("title"):
        return str(slide.frontmatter["title"])
    heading = re.sub(r"\[@[^\]]*\]|<[^>]+>", "", first_heading(slide.body)).strip()
    return heading or f"({slide.frontmatter.get('layout', 'untitled')} slide, {slide.path.name}:{slide.start_line})"


def plan_deck(deck: Deck, words_per_minute: float) -> list[SlidePlan]:
    plans, section, last_file = [], "Opening", None
    for number, slide in enumerate(deck.visible_slides, start=1):
        layout = slide.frontmatter.get("layout")
        if layout in ("section", "cover") or slide.path != last_file:
            section = slide_title(slide) if number > 1 else "Opening"
        last_file = slide.path
        words = len(slide_notes(slide).split())
        budget = slide.frontmatter.get("budget")
        seconds = parse_seconds(budget) if budget is not None else max(MIN_SECONDS, 60 * words / words_per_minute)
        plans.append(SlidePlan(number, slide_title(slide), words, seconds, budget is not None, section))
    return plans


def load_runs(paths: list[Path]) -> list[dict[int, float]]:
    runs = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            runs.append({int(k): float(v) for k, v in data["slides"].items()})
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}: not a rehearsal file ({error}); save one from presenter mode")
    return runs


def saved_runs(deck_path: Path) -> tuple[list[Path], list[str]]:
    """The deck's saved runs, <deck folder>/rehearsals/<deck>-*.json, and a line for each other
    file there saying why it is not read."""
    folder, stem = deck_path.parent / "rehearsals", deck_path.stem
    if not folder.is_dir():
        return [], []
    runs = sorted(folder.glob(f"{stem}-*.json"))
    others = sorted(p for p in folder.iterdir() if p not in runs and not p.name.startswith("."))
    return runs, [f"rehearse: ignored {path}: {why_ignored(path, stem)}" for path in others]


def why_ignored(path: Path, stem: str) -> str:
    if path.suffix != ".json" or not path.is_file():
        return "not a saved run (a .json file from presenter mode)"
    try:
        deck = json.loads(path.read_text()).get("deck")
    except (ValueError, AttributeError, OSError):
        deck = None
    if isinstance(deck, str) and deck != stem:
        return f"a run of deck {deck!r} (its \"deck\"), not of {stem}"
    return (f"only {stem}-*.json files are read for this deck (presenter mode saves them so): rename it "
            f"{stem}-{path.name} to compare it")


def section_totals(plans: list[SlidePlan], seconds_of) -> dict[str, float]:
    totals: dict[str, float] = {}
    for plan in plans:
        totals[plan.section] = totals.get(plan.section, 0.0) + seconds_of(plan)
    return totals


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def report(deck: Deck, plans: list[SlidePlan], runs: list[dict[int, float]]) -> tuple[str, list[str]]:
    """The printed plan and the list of flags (sections that run over)."""
    duration = parse_seconds(deck.headmatter.get("duration", "30min"), default_unit="min")
    header = f"{'#':>3}  {'section':<22} {'title':<34} {'words':>5} {'plan':>6} {'total':>6}"
    lines = [header + "".join(f" {'run' + str(i + 1):>6}" for i in range(len(runs)))]
    flags, cumulative, passed_at = [], 0.0, None
    for plan in plans:
        cumulative += plan.seconds
        if cumulative > duration * (1 + OVER_TOLERANCE) and passed_at is None:
            passed_at = plan.section
        mark = "*" if plan.budget_given else " "
        row = (f"{plan.number:>3}  {plan.section[:22]:<22} {plan.title[:34]:<34} {plan.words:>5} "
               f"{clock(plan.seconds):>5}{mark} {clock(cumulative):>6}")
        lines.append(row + "".join(f" {clock(run[plan.number]) if plan.number in run else '-':>6}" for run in runs))
    if passed_at:
        flags.append(f"section '{passed_at}' runs past the deck's duration {clock(duration)}")
    planned = section_totals(plans, lambda p: p.seconds)
    for index, run in enumerate(runs, start=1):
        spent = section_totals(plans, lambda p: run.get(p.number, 0.0))
        flags += [f"run{index}: section '{name}' took {clock(spent[name])} against {clock(planned[name])} planned"
                  for name in planned if spent[name] > planned[name] * (1 + OVER_TOLERANCE)]
    ratio = cumulative / duration - 1
    lines.append(f"plan: {clock(cumulative)} for {len(plans)} slides against duration {clock(duration)} "
                 f"({ratio:+.0%}); * = budget from frontmatter")
    lines += [f"over: {flag}" for flag in flags] or ["over: nothing runs over"]
    return "\n".join(lines), flags


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make rehearse", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path, nargs="?", default=Path("talk/slides.md"))
    parser.add_argument("--wpm", type=float, default=130.0, help="speaking rate, words per minute")
    parser.add_argument("--runs", type=Path, nargs="*", help="saved rehearsals (default: talk/rehearsals/<deck>-*.json)")
    options = parser.parse_args(argv)
    try:
        deck = read_deck(options.deck)
    except DeckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    run_files, ignored = (options.runs, []) if options.runs is not None else saved_runs(options.deck)
    for line in ignored:
        print(line, file=sys.stderr)
    text, _ = report(deck, plan_deck(deck, options.wpm), load_runs(run_files))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
