"""`make rehearse`: how long each slide will take, against the deck's stated duration.

    python -m decktools.rehearse talk/slides.md --wpm 130 [--runs talk/rehearsals/*.json]

Per slide of the built deck (numbered as decktools.numbering numbers it: a reference list of
several pages is several slides): the words in its speaker notes, an estimated speaking time
(words / wpm, at least MIN_SECONDS for a slide shown at all; a `budget: 90` (seconds), `1.5min`,
`2 minutes` or `1h30m` in the slide's frontmatter overrides), and the cumulative time against the
headmatter's `duration` (40min, 1h30m, 1:30:00: read as Slidev's presenter timer reads it,
slidev_seconds; default 30min). A budget or duration that cannot be read is one `file:line: error:`
(timing_problems; make check reports it too), and so is a duration with no unit (`duration: 45`):
Slidev's timer counts it as seconds, so the speaker is asked to write 45min.
Sections start at `layout: section` / `cover` slides and at the first slide of each imported file
(before the first, "Opening"; a deck with none is one section named by its `title`); a section is flagged when the plan passes the deck's duration inside it, or when a saved
rehearsal spent more than 10% over the section's plan.

Rehearsal runs are saved from presenter mode (the pacing panel's "save" button) as JSON:
{"deck": "slides", "slides": {"3": 41.5, ...}} seconds per slide number, in a file it names
<deck>-<time>.json. The files <deck>-*.json in the deck's rehearsals/ folder (talk/rehearsals/)
are compared with the plan automatically, each run's file named under the table; every other file
there is named as ignored, with why: a run whose "deck" is another deck (whatever its name), a
file that is not JSON (line and column) or has no slide times, a name to change (to the one
presenter mode gives). A run's times for slide numbers the deck does not have are named under the
table. A bad run file never stops the plan: only a deck that cannot be read makes the command fail.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from decktools.bib import deck_bib_files, load_bibliographies
from decktools.markdown import Deck, DeckError, Slide, read_deck
from decktools.mdscan import first_heading, speaker_notes
from decktools.numbering import cited_keys, numbered_slides
from decktools.problems import Problem

MIN_SECONDS = 15.0
OVER_TOLERANCE = 0.10
SHORT_TOLERANCE = 0.25      # a plan this far under the duration gets a hint on what to add
UNITS = {"h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "m": 60, "min": 60, "mins": 60,
         "minute": 60, "minutes": 60, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1}
PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# @slidev/parser's parseTimeString, which the presenter timer reads `duration` with
SLIDEV_UNITS = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600,
                "hour": 3600, "hours": 3600, "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
                "month": 2629746, "months": 2629746, "year": 31556952, "years": 31556952}
SLIDEV_PART = re.compile(r"([\d.]+)([a-z]+)", re.IGNORECASE)
JS_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)


def parse_seconds(value, default_unit: str = "s") -> float:
    """'40min', '1.5h', '90s', '1h30m', '40 minutes', '1:30' (m:s), 90 -> seconds; a bare number is
    in default_unit. ValueError for anything else."""
    text = str(value).strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool) or NUMBER.fullmatch(text):
        return float(text) * UNITS[default_unit]
    if re.fullmatch(r"\d+(?::\d+){1,2}", text):
        return float(sum(int(part) * 60 ** power for power, part in enumerate(reversed(text.split(":")))))
    parts = list(PART.finditer(text))
    if parts and "".join(m.group(0) for m in parts) == text and all(m.group(2).lower() in UNITS for m in parts):
        return sum(float(m.group(1)) * UNITS[m.group(2).lower()] for m in parts)
    raise ValueError(f"cannot read {value!r} as a duration: write e.g. 40min, 90s, 1.5h or 1h30m")


def _js_number(text: str) -> float:
    """JavaScript's Number(text) for the decimal forms ('' and spaces are 0); ValueError for NaN."""
    if not text.strip():
        return 0.0
    if not JS_NUMBER.fullmatch(text.strip()):
        raise ValueError(text)
    return float(text)


def slidev_seconds(value) -> float:
    """The seconds Slidev's presenter timer reads `duration` as (parseTimeString): a number is
    seconds; '1:30' is m:s and '1:00:00' h:m:s; else number-unit parts, '40min', '1h30m',
    '3mins 5secs'; a leading + is ignored. ValueError where Slidev's timer throws."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.removeprefix("+")
    if ":" in text:
        parts = [_js_number(part) for part in text.split(":")]
        if len(parts) > 3:
            raise ValueError(value)
        return sum(part * 60 ** power for power, part in enumerate(reversed(parts)))
    if not re.search(r"[a-z]", text, re.IGNORECASE):
        return _js_number(text)
    if SLIDEV_PART.sub("", text).strip() or any(m.group(2).lower() not in SLIDEV_UNITS for m in SLIDEV_PART.finditer(text)):
        raise ValueError(value)
    return sum(_js_number(m.group(1)) * SLIDEV_UNITS[m.group(2).lower()] for m in SLIDEV_PART.finditer(text))


def is_bare_number(value) -> bool:
    """A duration with no unit and no colon: seconds to Slidev, whereas a speaker means minutes."""
    return not isinstance(value, bool) and (isinstance(value, (int, float)) or (
        isinstance(value, str) and bool(JS_NUMBER.fullmatch(value.strip().removeprefix("+")))))


def duration_problem(path: Path, line: int, value) -> Problem | None:
    """Why the headmatter's `duration` is not what Slidev's timer will count, at its line; None when fine."""
    if is_bare_number(value):
        number = str(value).strip()
        return Problem(path, line, 1, f"duration: {number} has no unit, and Slidev's presenter timer counts "
                       f"a bare number as seconds: write {number}min for minutes ({number}s if seconds are meant)")
    try:
        slidev_seconds(value)
    except ValueError:
        return Problem(path, line, 1, f"duration: Slidev's presenter timer cannot read {value!r} (a number with "
                       "its unit right after it, s, min or h, or h:m:s): write e.g. 40min or 1h30m")
    return None


def _timing_problem(path: Path, line: int, key: str, value) -> Problem | None:
    """The problem with a slide's `budget` (rehearse's own key), at its line; None when it reads."""
    try:
        parse_seconds(value)
    except ValueError as error:
        return Problem(path, line, 1, f"{key}: {error}")
    return None


def timing_problems(deck: Deck) -> list[Problem]:
    """The headmatter's `duration` and each slide's `budget` that cannot be read, at their lines."""
    found = []
    if deck.headmatter.get("duration") is not None:
        found.append(duration_problem(deck.entry, deck.headmatter_lines.get("duration", 1), deck.headmatter["duration"]))
    for slide in deck.slides:
        if slide.frontmatter.get("budget") is not None:   # at the src: slide that set it, if one did
            found.append(_timing_problem(*slide.where("budget"), "budget", slide.frontmatter["budget"]))
    return list(dict.fromkeys(problem for problem in found if problem))


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


def plan_deck(deck: Deck, words_per_minute: float, works: int = 0) -> list[SlidePlan]:
    """One plan per slide of the built deck, numbered as it is (decktools.numbering) with a
    reference list of `works` entries; its later pages take no time."""
    plans, section, last_file = [], "Opening", None
    for numbered in numbered_slides(deck, works):
        slide, number = numbered.slide, numbered.number
        layout = slide.frontmatter.get("layout")
        if numbered.page == 1 and (layout in ("section", "cover") or slide.path != last_file):
            section = slide_title(slide) if number > 1 else "Opening"
        last_file = slide.path
        words = len(slide_notes(slide).split()) if numbered.page == 1 else 0
        budget = slide.frontmatter.get("budget") if numbered.page == 1 else None
        seconds = parse_seconds(budget) if budget is not None else max(MIN_SECONDS, 60 * words / words_per_minute)
        if numbered.page > 1:      # a later page of the reference list: shown in passing
            seconds = 0
        title = slide_title(slide) + (f" (page {numbered.page})" if numbered.page > 1 else "")
        plans.append(SlidePlan(number, title, words, seconds, budget is not None, section))
    if all(plan.section == "Opening" for plan in plans):    # no sections: one, named for the talk
        whole = str(deck.headmatter.get("title") or (plans[0].title if plans else "")) or "Opening"
        plans = [replace(plan, section=whole) for plan in plans]
    return plans


def works_cited(deck_path: Path, deck: Deck) -> int:
    """How many works the deck's reference list shows: the cited keys its bib files hold."""
    bibliography, _ = load_bibliographies(deck_bib_files(deck_path, deck.headmatter)[0])
    return len(cited_keys(deck, bibliography) & set(bibliography.entries))


@dataclass
class Run:
    """One saved rehearsal: its file and the seconds spent per slide number."""
    path: Path
    seconds: dict[int, float]
    saved: object = None               # the ISO time presenter mode wrote, if any


class NotARun(Exception):
    """Why a file is left out of the comparison (printed as `rehearse: ignored <file>: <why>`)."""


def run_times(data) -> dict[int, float]:
    """The {slide number: seconds} of a parsed run file; NotARun saying what is wrong in it."""
    slides = data.get("slides") if isinstance(data, dict) else None
    if not isinstance(slides, dict):
        raise NotARun('no "slides": {"<slide number>": <seconds>, ...} in it; '
                      "save the run again from presenter mode")
    for key, value in slides.items():
        if not key.isdecimal() or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NotARun(f'"slides" has {key!r}: {json.dumps(value)}, not "<slide number>": <seconds>; '
                          "fix that entry or save the run again from presenter mode")
    return {int(key): float(value) for key, value in slides.items()}


def read_run(path: Path, stem: str) -> Run:
    """The run saved in `path`; NotARun when it is no run, cannot be read, or is of another deck
    than `stem` by its "deck" (presenter mode records it), whatever the file's name."""
    if path.is_dir():
        raise NotARun("a folder (only the files directly in rehearsals/ are read)")
    if path.suffix != ".json":
        raise NotARun("not a saved run (a .json file from presenter mode)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise NotARun(f"not JSON: line {error.lineno} column {error.colno}: {error.msg}; fix it there "
                      "or save the run again from presenter mode") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NotARun(f"cannot be read ({getattr(error, 'strerror', None) or error})") from None
    deck = data.get("deck") if isinstance(data, dict) else None
    if isinstance(deck, str) and deck != stem:
        raise NotARun(f"a run of deck {deck!r} (its \"deck\"), not of {stem}")
    return Run(path, run_times(data), data.get("saved"))


def panel_name(path: Path, stem: str, saved) -> str:
    """The name presenter mode's save button would have given this run, `<deck>-<time>.json`:
    the part after a leading deck name (any case, with or without a dash) kept, else its time."""
    rest = path.stem
    if rest.lower().startswith(stem.lower()):
        rest = rest[len(stem):].lstrip("-_ ")
    if not rest:
        written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        moment = (saved if isinstance(saved, str) and re.fullmatch(r"[0-9T:.+Z-]+", saved)
                  else written.isoformat(timespec="milliseconds"))
        rest = re.sub(r"[:.]", "-", moment.replace("+00:00", "Z"))   # as the panel's toISOString()
    return f"{stem}-{rest}.json"


def rename_advice(run: Run, stem: str) -> str:
    new = panel_name(run.path, stem, run.saved)
    taken = (" (a file of that name is there already: keep one of the two)"
             if (run.path.parent / new).exists() else "")
    return (f"only {stem}-*.json files are read for this deck (presenter mode saves them so): rename it "
            f"{new} to compare it{taken}")


def collect_runs(paths: list[Path], stem: str, by_name: bool) -> tuple[list[Run], list[str]]:
    """The runs of deck `stem` among `paths`, and a line for each other path saying why it is
    left out; `by_name`: only <stem>-*.json names are runs (the rehearsals/ folder)."""
    runs, ignored = [], []
    for path in paths:
        try:
            run = read_run(path, stem)
            if by_name and not path.name.startswith(f"{stem}-"):
                raise NotARun(rename_advice(run, stem))
            runs.append(run)
        except NotARun as why:
            ignored.append(f"rehearse: ignored {path}: {why}")
    return runs, ignored


def saved_runs(deck_path: Path) -> tuple[list[Run], list[str]]:
    """The deck's saved runs, <deck folder>/rehearsals/<deck>-*.json, and a line for each other
    file there saying why it is not read."""
    folder = deck_path.parent / "rehearsals"
    if not folder.is_dir():
        return [], []
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    return collect_runs(files, deck_path.stem, by_name=True)


def section_totals(plans: list[SlidePlan], seconds_of) -> dict[str, float]:
    totals: dict[str, float] = {}
    for plan in plans:
        totals[plan.section] = totals.get(plan.section, 0.0) + seconds_of(plan)
    return totals


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def unknown_slides(index: int, run: Run, slide_count: int) -> list[str]:
    """A line naming the run's times for slide numbers the deck does not have, which the table
    cannot show: the deck changed since the run, or the entry is wrong."""
    extra = sorted(number for number in run.seconds if not 1 <= number <= slide_count)
    if not extra:
        return []
    numbers = ", ".join(map(str, extra))
    return [f"run{index}: slide{'s' * (len(extra) > 1)} {numbers} not in the deck ({slide_count} slides, "
            f"numbered as the built deck): {clock(sum(run.seconds[n] for n in extra))} left out of the "
            f"table; the deck changed since this run, or fix {run.path}"]


def shortened(text: str, width: int) -> str:
    """`text` cut to `width` characters, an ellipsis showing where it was cut."""
    return text if len(text) <= width else text[:width - 1] + "…"


def short_plan_hint(plans: list[SlidePlan], planned: float, duration: float) -> list[str]:
    """When the plan is well under the duration, what it is made of and what to add."""
    if planned >= duration * (1 - SHORT_TOLERANCE):
        return []
    unbudgeted = [plan for plan in plans if not plan.budget_given]
    at_minimum = [plan for plan in unbudgeted if plan.seconds <= MIN_SECONDS]
    silent = sum(1 for plan in at_minimum if plan.words == 0)
    return [f"short: the plan counts only the words of the notes; {len(at_minimum)} of {len(unbudgeted)} slides "
            f"without `budget:` count the minimum, {MIN_SECONDS:.0f} s ({silent} with no notes, the others with "
            "notes read in less); give the slides you will talk over a `budget: 3min` in their frontmatter, "
            "or write their notes"]


def no_runs_hint(deck_path: Path) -> list[str]:
    """How to get run columns, when there are none."""
    folder = deck_path.parent / "rehearsals"
    return [f"runs: none in {folder}/; rehearse in presenter mode (`make dev`, then /presenter), press the "
            f"panel's save button, and put the file it downloads ({deck_path.stem}-<time>.json) in "
            f"{folder}/{'' if folder.is_dir() else ' (make the folder)'}"]


def report(deck: Deck, plans: list[SlidePlan], runs: list[Run]) -> tuple[str, list[str]]:
    """The printed plan, each run column's file named under it, and the list of flags (sections
    that run over)."""
    duration = slidev_seconds(deck.headmatter.get("duration", "30min"))      # Slidev's default
    header = f"{'#':>3}  {'section':<22} {'title':<40} {'words':>5} {'plan':>6} {'total':>6}"
    lines = [header + "".join(f" {'run' + str(i + 1):>6}" for i in range(len(runs)))]
    flags, cumulative, passed_at = [], 0.0, None
    for plan in plans:
        cumulative += plan.seconds
        if cumulative > duration * (1 + OVER_TOLERANCE) and passed_at is None:
            passed_at = plan.section
        mark = "*" if plan.budget_given else " "
        row = (f"{plan.number:>3}  {shortened(plan.section, 22):<22} {shortened(plan.title, 40):<40} {plan.words:>5} "
               f"{clock(plan.seconds):>5}{mark} {clock(cumulative):>6}")
        lines.append(row + "".join(f" {clock(run.seconds[plan.number]) if plan.number in run.seconds else '-':>6}"
                                    for run in runs))
    for index, run in enumerate(runs, start=1):
        lines += [f"run{index} = {run.path}"] + unknown_slides(index, run, len(plans))
    if passed_at:
        flags.append(f"section '{passed_at}' runs past the deck's duration {clock(duration)}")
    planned = section_totals(plans, lambda p: p.seconds)
    for index, run in enumerate(runs, start=1):
        spent = section_totals(plans, lambda p: run.seconds.get(p.number, 0.0))
        flags += [f"run{index}: section '{name}' took {clock(spent[name])} against {clock(planned[name])} planned"
                  for name in planned if spent[name] > planned[name] * (1 + OVER_TOLERANCE)]
    ratio = cumulative / duration - 1
    lines.append(f"plan: {clock(cumulative)} for {len(plans)} slides against duration {clock(duration)} "
                 f"({ratio:+.0%}); * = budget from frontmatter")
    lines += short_plan_hint(plans, cumulative, duration)
    lines += [f"over: {flag}" for flag in flags] or ["over: nothing runs over"]
    return "\n".join(lines), flags


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make rehearse", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path, nargs="?", default=Path("talk/slides.md"))
    parser.add_argument("--wpm", type=float, default=130.0, help="speaking rate, words per minute")
    parser.add_argument("--runs", type=Path, nargs="*", help="saved rehearsals (default: talk/rehearsals/<deck>-*.json, the files the presenter "
                        "panel's save button downloads)")
    options = parser.parse_args(argv)
    try:
        deck = read_deck(options.deck)
    except DeckError as error:
        print(Problem(error.path, error.line, 1, error.message), file=sys.stderr)
        return 1
    unreadable = timing_problems(deck)
    if unreadable:
        print("\n".join(map(str, unreadable)), file=sys.stderr)
        return 1
    # A bad run file is named and left out; only a deck that cannot be read fails the command.
    runs, ignored = (saved_runs(options.deck) if options.runs is None
                     else collect_runs(options.runs, options.deck.stem, by_name=False))
    for line in ignored:
        print(line, file=sys.stderr)
    text, _ = report(deck, plan_deck(deck, options.wpm, works_cited(options.deck, deck)), runs)
    print("\n".join([text] + (no_runs_hint(options.deck) if not runs and options.runs is None else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
