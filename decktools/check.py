"""`make check`: every citation, asset and measured number of a deck must resolve offline.

    python -m decktools.check talk/slides.md [--bib citations.bib]

The bib files are those the deck's headmatter `biblio.filename` names (see decktools.bib);
`--bib` replaces them.

Errors (the check fails, printing file:line:column and what to do): an unknown citation key (keys
are case-sensitive, as pandoc reads them; "did you mean" ignores case); a
`<Cite input="DOI"/>` whose DOI is not the doi field of a bib entry (the deck never looks a DOI
up over the network); a bib file the headmatter names that does not exist; bib syntax errors,
duplicate keys (within a file or across the deck's files), a crossref or @string macro that the
file does not define, entries missing
author, title or year (as decktools.bib defines them: a biblatex date counts, a web page needs no
author); images, backgrounds and other assets that point to a remote URL or to a
file that does not exist; a figure id (image under /figures/, <Measured fig>) that no script in
figures_src/ declares, or a <Measured> value key its figure's JSON lacks (both with "did you
mean"); a <Measured> number whose figure has not been made yet; a slide's `budget:` or the
headmatter's `duration:` that is no duration (decktools.rehearse.timing_problems); a `src:` range
that names no slide of its file; a theme or addon that is not installed in talk/node_modules
(decktools.themes, resolved as Slidev resolves it); a code fence left open on its slide.
Warnings: bib entries that no deck in the folder using that bib file cites (a citation on a hidden
slide, `hide:`/`disabled:`, lists nothing, but its key is checked); `hide: no`, which Slidev reads as
true; links to remote pages;
a figure the deck shows (image under /figures/, <Measured fig>) that is stale, at the first place
it is shown (in slide order), naming the others, with the runner's reason (its script, a model's
checkpoint or zoo entry, ... changed since it was made, or it was made in another profile than
--profile, the PROFILE make slides runs, default full) and the command that remakes it. Staleness is decided as the runner decides it, from
content hashes (decktools.deckmeta.stale_reasons): nothing is built.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from decktools import references
from decktools.bib import REPOSITORY_BIB, Bibliography, deck_bib_files, load_bibliographies, normalise_doi
from decktools.deckmeta import NOT_DECLARED, stale_reasons
from decktools.markdown import Deck, DeckError, read_deck
from decktools.mdscan import unclosed_fences
from decktools.numbering import cited_keys
from decktools.numbers import FigureNotMadeError, MeasuredError, format_measured
from decktools.problems import Problem, counted, errors
from decktools.rehearse import timing_problems
from decktools.themes import theme_problems
from figures_src.runner import (FIX_FIRST, UNKNOWN_MODEL, ZOO_PROBLEM, DuplicateFigureIdError, FigureSpecError,
                                declared_ids, did_you_mean, parse_args, shown_path, zoo_file_problem)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIB = REPOSITORY_BIB
DEFAULT_PROFILE = parse_args([]).profile     # the runner's, which make figures and make slides use


@dataclass
class DeckReport:
    deck: Deck | None
    bibliography: Bibliography
    problems: list[Problem] = field(default_factory=list)


def _key_problem(ref: references.Reference, key: str, bib: Bibliography) -> Problem | None:
    if key in bib.entries:
        return None
    fix = f": add an entry to {bib.names} or fix the key"
    if ref.kind == "bref" and re.search(r"[,;\s]", key):
        return Problem(ref.path, ref.line, ref.column, f"<Cite bref=\"{key}\"/> names several keys, but bref takes "
                       "one: write one <Cite bref=\"key\"/> per work, or [@a; @b] for one citation of several")
    if any(known.casefold() == key.casefold() for known in bib.entries):
        fix = "; citation keys are case-sensitive: write the key as its entry does"
    hint = did_you_mean(key, bib.entries, cutoff=0.6)   # keys share their years: ask for more alike
    return Problem(ref.path, ref.line, ref.column, f"unknown citation key {key!r}{hint}{fix}")


def citation_problems(deck: Deck, bib: Bibliography) -> list[Problem]:
    problems = []
    for ref in references.citations(deck, bib.entries):
        if ref.kind == "doi":
            if not bib.key_for_doi(ref.target):
                problems.append(Problem(ref.path, ref.line, ref.column, f"DOI {ref.target} is not the doi "
                                        f"of any entry in {bib.names}: add the entry (with doi = "
                                        f"{{{normalise_doi(ref.target)}}}) so the deck never fetches it over the network"))
        else:
            problems += [p for key in ref.keys if (p := _key_problem(ref, key, bib))]
    return problems


def declared_figure_ids(deck_path: Path) -> tuple[set[str] | None, list[Problem]]:
    """The figure ids the repository's scripts declare (<repo>/figures_src beside <repo>/talk);
    None where there is no such folder, so a deck outside a repository is not checked for ids.
    A script that does not parse (or whose FIGURES is not a literal, or is changed after it) is a
    warning at its line, and the ids go unchecked: which figures it declares is unknown."""
    scripts_dir = deck_path.resolve().parent.parent / "figures_src"
    if not scripts_dir.is_dir():
        return None, []
    try:
        return set(declared_ids(scripts_dir)), []
    except SyntaxError as error:
        where = (Path(shown_path(error.filename)), error.lineno or 1, error.offset or 1)
        message = f"{error.msg}: this figure script does not parse"
    except FigureSpecError as error:   # at the script's line where the runner says which
        where, message = (deck_path, 1, 1), str(error)
        if error.path is not None:
            shown = shown_path(str(error.path))
            where, message = (Path(shown), error.line, 1), message.removeprefix(f"{shown}:{error.line}: ")
        if isinstance(error, DuplicateFigureIdError):     # the runner makes no figure at all then
            return None, [Problem(*where, f"{message}; `make slides` and `make figures` stop until it is fixed")]
    return None, [Problem(*where, f"{message}; the deck's figure ids are not checked until it is fixed",
                          "warning")]


def unknown_figure_message(figure_id: str, declared: set[str] | None) -> str | None:
    """Why a figure id on a slide is wrong, with the nearest declared ids; None when it is fine."""
    if declared is None or figure_id in declared:
        return None
    return (f"no figure script declares figure {figure_id!r}{did_you_mean(figure_id, declared)}: "
            "fix the id, or declare it in a script's FIGURES")


def figure_id_problems(deck: Deck, declared: set[str] | None) -> list[Problem]:
    """Images under /figures/ and <Measured fig=...> that name an id no script declares."""
    return [Problem(ref.path, ref.line, ref.column, message) for ref, figure_id in references.figures(deck)
            if (message := unknown_figure_message(figure_id, declared))]


def make_slides_line(deck_path: Path, profile: str = DEFAULT_PROFILE) -> str:
    """The make line that makes this deck's figures (only those) in `profile`, and builds it."""
    return f"make slides DECK={deck_path}" + ("" if profile == DEFAULT_PROFILE else f" PROFILE={profile}")


def asset_problems(deck: Deck, public_dir: Path, declared: set[str] | None,
                   make_line: str) -> list[Problem]:
    """Remote and missing assets; a figure only a hidden slide shows need not be made yet
    (make figures skips it), but its id must be declared."""
    problems, unmade = [], _on_hidden_slides(deck, references.assets)
    for ref in references.assets(deck):
        target = ref.target.split("#")[0].split("?")[0]
        if ref.kind == "link":
            if ref.remote:
                problems.append(Problem(ref.path, ref.line, ref.column, f"link to a remote page {ref.target}: "
                                        "it needs the network during the talk; cite it instead", "warning"))
            continue
        if ref.remote:
            problems.append(Problem(ref.path, ref.line, ref.column, f"remote asset {ref.target}: the deck must "
                                    "work offline; save the file under talk/public/ and refer to it as /name"))
        elif target and not target.startswith(("mailto:", "data:")):
            local = public_dir / target.lstrip("/") if target.startswith("/") else ref.path.parent / target
            figure_id = references.figure_id_of(target)
            if figure_id and (message := unknown_figure_message(figure_id, declared)):
                problems.append(Problem(ref.path, ref.line, ref.column, f"asset {ref.target}: {message}"))
            elif not local.exists() and not (figure_id and _at(ref) in unmade):
                hint = f"run `{make_line}` to make it" if figure_id else "fix the path"
                problems.append(Problem(ref.path, ref.line, ref.column, f"asset {ref.target} not found "
                                        f"(looked for {local}): {hint}"))
    return problems


def _at(ref: references.Reference) -> tuple:
    return ref.path, ref.line, ref.column


def _on_hidden_slides(deck: Deck, find) -> set[tuple]:
    """Where `find` (references.assets, .measured, ...) finds things on hidden slides only."""
    return {_at(ref) for ref in find(deck)} - {_at(ref) for ref in find(deck.shown())}


def measured_problems(deck: Deck, figures_dir: Path, declared: set[str] | None,
                      make_line: str) -> list[Problem]:
    """<Measured> numbers that cannot be read; one on a hidden slide is never built, so only its
    figure id is checked."""
    problems, hidden = [], _on_hidden_slides(deck, references.measured)
    for ref in references.measured(deck):
        message = unknown_figure_message(ref.attributes.get("fig", ""), declared) if "fig" in ref.attributes else None
        if message is None and _at(ref) not in hidden:
            try:
                format_measured(ref.attributes, figures_dir)
            except FigureNotMadeError as error:
                message = f"{error}: run `{make_line}` to make it"
            except MeasuredError as error:
                message = str(error)
        if message:
            problems.append(Problem(ref.path, ref.line, ref.column, message))
    return problems


def stale_figure_problems(deck: Deck, deck_path: Path, declared: set[str] | None,
                          profile: str = DEFAULT_PROFILE) -> list[Problem]:
    """A warning for each figure the deck shows that `make slides PROFILE=profile` remakes (one
    made in another profile included), at the first place it is shown, naming the others: those
    slides show what it was before its inputs changed. Only where the ids are checked (declared is
    not None). A model that cannot be built (its zoo entry's problem, or a zoo.yaml that cannot be
    read at all) is one warning, saying which of the deck's figures it holds back: making them
    again would fail."""
    if declared is None:
        return []
    repo, figures_dir = deck_path.resolve().parent.parent, deck_path.parent / "public" / "figures"
    shown = [(ref, figure_id) for ref, figure_id in references.figures(deck.shown()) if figure_id in declared]
    try:
        reasons = stale_reasons({figure_id for _, figure_id in shown}, figures_dir, repo / "models",
                                repo / "figures_src", profile=profile)   # engine files: the runner's
    except ValueError as error:        # a manifest that is not JSON says what to do
        return [Problem(figures_dir / "manifest.json", 1, 1, str(error), "warning")]
    broken_zoo = zoo_file_problem(repo / "models")
    places: dict[str, list[references.Reference]] = {}
    for ref, figure_id in sorted(shown, key=lambda item: slide_position(deck, item[0])):
        why = reasons.get(figure_id)
        if why and why != NOT_DECLARED and model_problem(why, broken_zoo) is None:
            places.setdefault(figure_id, []).append(ref)
    return held_back_problems(shown, reasons, broken_zoo) + [
        stale_problem(figure_id, refs, reasons[figure_id], deck_path, profile) for figure_id, refs in places.items()]


def slide_position(deck: Deck, ref: references.Reference) -> tuple[int, int, int]:
    """(slide index, line, column): references in the order the audience meets them, an imported
    page's between the slides around its src: slide."""
    index = next((number for number, slide in enumerate(deck.slides) if slide.path == ref.path
                  and slide.start_line <= ref.line <= (slide.end_line or ref.line)), len(deck.slides))
    return index, ref.line, ref.column


def stale_problem(figure_id: str, refs: list, why: str, deck_path: Path, profile: str) -> Problem:
    """The warning for one stale figure, at the first place the deck shows it."""
    first, named = refs[0], "" if profile == DEFAULT_PROFILE else f" PROFILE={profile}"
    return Problem(first.path, first.line, first.column,
                   f"figure {figure_id!r} is stale: {why}; the slide {old_outputs_shown(refs)}{also_shown(refs)}"
                   f"{remake_advice(why, make_slides_line(deck_path, profile), figure_id, named)}", "warning")


def old_outputs_shown(refs: list) -> str:
    """What the places show of the figure: its image, its numbers (<Measured>), or both."""
    numbers = sum(ref.kind == "measured" for ref in refs)
    if numbers == 0:
        return "shows its old image"
    if numbers == len(refs):
        return "quotes its old number" + ("s" if numbers > 1 else "")
    return "shows its old image and numbers"


def also_shown(refs: list, listed: int = 4) -> str:
    """' (also at line 40, pages/a.md:12 and 3 more places)': the places after the first (refs[0]),
    briefly; a place in the first one's file by its line."""
    if len(refs) < 2:
        return ""
    places = [f"line {ref.line}" if ref.path == refs[0].path else f"{shown_path(str(ref.path))}:{ref.line}"
              for ref in refs[1:]]
    more = len(places) - listed
    tail = f" and {counted(more, 'more place')}" if more > 0 else ""
    return f" (also at {', '.join(places[:listed])}{tail})"


def model_problem(why: str, broken_zoo) -> str | None:
    """The model problem a figure's stale reason comes from (a zoo.yaml that cannot be read, a
    model's zoo entry problem, or a model the zoo has no entry for), which making the figure again
    would only repeat; None otherwise."""
    if broken_zoo is not None and str(broken_zoo) in why:
        return str(broken_zoo)
    return why if why.startswith((ZOO_PROBLEM, UNKNOWN_MODEL)) else None


def held_back_problems(shown: list, reasons: dict, broken_zoo) -> list[Problem]:
    """One warning per model problem that keeps figures of the deck from being made again: at
    zoo.yaml's line for a file that cannot be read, else at the first place the deck shows one."""
    groups: dict[str, dict] = {}
    for ref, figure_id in shown:
        problem = model_problem(reasons.get(figure_id) or "", broken_zoo)
        if problem:
            groups.setdefault(problem, {}).setdefault(figure_id, ref)
    problems = []
    for problem, first_places in groups.items():
        ids = list(first_places)
        listed = f"({', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})"
        held = (f"the figure of this deck that reads it {listed} keeps its previous image and numbers"
                if len(ids) == 1 else f"the {len(ids)} figures of this deck that read it {listed} keep their "
                "previous images and numbers") + " until it is fixed"
        if broken_zoo is not None and problem == str(broken_zoo):
            problems.append(Problem(*broken_zoo.where, f"{broken_zoo.message}; no model can be read, and {held}",
                                    "warning"))
        else:
            first = next(iter(first_places.values()))
            problems.append(Problem(first.path, first.line, first.column, f"{problem}\n  {held}", "warning"))
    return problems


def remake_advice(why: str, make_line: str, figure_id: str, named: str) -> str:
    """The command that remakes the figure; none after a reason that says running it again
    won't help (its last run with these inputs failed: the runner says where to fix it)."""
    if why.endswith(FIX_FIRST):
        return ""
    return f": run `{make_line}` (or `make figures ONLY='{figure_id}'{named}`) to remake it"


def hiding_problems(deck: Deck) -> list[Problem]:
    """`hide: no` (or off): text to Slidev's YAML 1.2, so true, and the slide is hidden."""
    return [Problem(*slide.where(key), 1, f"{key}: {slide.frontmatter[key]} is text to Slidev, which reads it as true and hides "
                    f"the slide: write {key}: false to show it, or {key}: true", "warning")
            for slide in deck.slides for key in ("hide", "disabled")
            if str(slide.frontmatter.get(key)).lower() in ("no", "off")]


def fence_problems(deck: Deck) -> list[Problem]:
    """A code fence left open runs to the end of its slide: Slidev then fails to build the deck
    with an error in its own generated file, or shows the rest of the slide as code."""
    return [Problem(slide.path, number, column, f"this {marker} code fence is not closed on its slide: add a "
                    f"line {marker} after the code (else Slidev fails to build, or shows the rest of the "
                    "slide, images included, as code)")
            for slide in deck.slides for number, column, marker in unclosed_fences(slide.body)]


def used_keys(deck: Deck, bib: Bibliography) -> set[str]:
    """The keys the deck's reference list shows (decktools.numbering.cited_keys), with the crossref parents they take fields from (removing a
    parent would lose its booktitle, editors, ...)."""
    keys = cited_keys(deck, bib)
    return keys | {bib.entries[key]["crossref"].strip() for key in keys if "crossref" in bib.entries.get(key, {})}


def sibling_decks(deck_path: Path) -> list[Path]:
    """The other decks beside this one (markdown files whose first line opens a headmatter)."""
    return [p for p in sorted(deck_path.parent.glob("*.md"))
            if not p.name.endswith(".prepared.md") and p.read_bytes().startswith(b"---")]


def unused_entry_problems(deck_path: Path, bib: Bibliography) -> list[Problem]:
    """Entries that no deck in the folder citing from the same bib file cites."""
    cited: dict[Path, set[str]] = {}
    for path in dict.fromkeys(sibling_decks(deck_path) + [deck_path]):
        try:
            deck = read_deck(path)
        except DeckError:
            continue  # that deck's own check reports it
        same = path.resolve() == deck_path.resolve()
        files = bib.files if same else deck_bib_files(path, deck.headmatter)[0]
        for file in files:
            cited.setdefault(file.resolve(), set()).update(used_keys(deck, bib))
    on_hidden = {key for ref in references.citations(read_deck(deck_path), bib.entries) for key in ref.keys}
    return [_unused_entry(key, bib, deck_path, key in on_hidden) for key in sorted(bib.entries)
            if key not in cited.get(bib.sources[key].resolve(), set())]


def _unused_entry(key: str, bib: Bibliography, deck_path: Path, on_hidden: bool) -> Problem:
    where = f" (only on hidden slides of {deck_path}, and no reference list shows those)" if on_hidden else ""
    return Problem(bib.sources[key], bib.lines[key], 1, f"entry {key!r} is cited by no deck in {deck_path.parent} "
                   f"that uses {bib.sources[key].name}{where}: cite it or remove it", "warning")


def bibliography_files(deck_path: Path, headmatter: dict,
                       bib_path: Path | list[Path] | None = None) -> tuple[list[Path], list[Problem]]:
    """The bib files of a deck: bib_path when given (an explicit override), else its headmatter's."""
    if bib_path is not None:
        return ([bib_path] if isinstance(bib_path, Path) else list(bib_path)), []
    return deck_bib_files(deck_path, headmatter)


def check_deck(deck_path: Path, bib_path: Path | list[Path] | None = None,
               profile: str = DEFAULT_PROFILE, figures: bool = True) -> DeckReport:
    """Every problem of the deck at deck_path and of the bibliography it cites; stale figures as
    `make slides PROFILE=profile` finds them. figures=False leaves out what making the figures may
    change (figure ids, assets, measured numbers, staleness): make slides checks the rest first."""
    try:
        deck, unreadable = read_deck(deck_path), None
    except DeckError as error:
        deck, unreadable = None, Problem(error.path, error.line, 1, error.message)
    files, problems = bibliography_files(deck_path, deck.headmatter if deck else {}, bib_path)
    bib_found = not problems and all(path.is_file() for path in files)
    bibliography, bib_problems = load_bibliographies(files)
    problems += bib_problems
    if deck is None:
        return DeckReport(None, bibliography, problems + [unreadable])
    if bib_found:   # else every key would be unknown: the bib's own "not found" says what to do
        problems += citation_problems(deck, bibliography) + unused_entry_problems(deck_path, bibliography)
    problems += timing_problems(deck) + theme_problems(deck) + hiding_problems(deck) + fence_problems(deck)
    if figures:
        problems += figure_problems(deck, deck_path, profile)
    # a page imported twice, or a src: slide's key merged onto each slide it imports, is one problem
    return DeckReport(deck, bibliography, list(dict.fromkeys(problems)))


def figure_problems(deck: Deck, deck_path: Path, profile: str) -> list[Problem]:
    """The deck's figure ids, assets, measured numbers and stale figures."""
    public_dir = deck_path.parent / "public"
    declared, problems = declared_figure_ids(deck_path)
    make_line = make_slides_line(deck_path, profile)
    problems += asset_problems(deck, public_dir, declared, make_line)
    problems += measured_problems(deck, public_dir / "figures", declared, make_line)
    return problems + stale_figure_problems(deck, deck_path, declared, profile)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make check", description="Check a deck's citations and assets.")
    parser.add_argument("deck", type=Path, nargs="?", default=REPO_ROOT / "talk" / "slides.md")
    parser.add_argument("--bib", type=Path, action="append",
                        help="bib file(s) to use instead of those the deck's biblio.filename names")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=["quick", "full", "gpu"],
                        help="warn about the figures `make slides PROFILE=...` would remake")
    options = parser.parse_args(argv)
    report = check_deck(options.deck, options.bib, options.profile)
    for problem in sorted(report.problems, key=lambda p: (p.level, str(p.path), p.line, p.column)):
        print(problem, file=sys.stderr)
    failed = errors(report.problems)
    warnings = len(report.problems) - len(failed)
    files = f" ({counted(len(report.deck.files), 'file')})" if report.deck else ""
    print(f"check: {counted(len(failed), 'error')}, {counted(warnings, 'warning')} in {options.deck}{files}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
