"""Write the deck that Slidev builds: talk/<deck>.prepared.md (and one per `src:` import).

The speaker edits talk/slides.md; Slidev is given the prepared copy, in which
  - every citation, `[@a; @b]`, `[see @a, p. 3]`, narrative `@a`, `<Cite bref="a"/>` or `<Cite input="DOI"/>` (of a DOI in the
    deck's bib files), becomes static APA text formatted by decktools.citations,
    `<span class="citation" data-keys="a b" v-pre>(Alpha et al., 2020; Beta, 2019)</span>`, and
    plain text "(Alpha et al., 2020)" in speaker notes; nothing formats citations in the browser;
  - a slide with `layout: biblio` becomes as many slides as the cited works need
    (`biblio: item_per_page:` in its frontmatter or the headmatter, default 10), each with its
    part of the reference list as static HTML; its notes stay on the first;
  - `<Measured .../>` becomes the number from the figure's JSON;
  - `src:` imports point to the prepared copies, a `#range` renumbered to the copy's slides (a
    bibliography slide of the imported file there is one slide per page);
  - a hidden slide (`hide:`/`disabled:`, its own or its src: slide's) is left as written: Slidev
    never loads it, and the reference list leaves out what only it cites;
  - a slide of layout image, image-left or image-right whose `image:` is a figure (/figures/...)
    gets `backgroundSize: contain`, unless it sets one: Slidev's default, cover, crops the figure
    (its axes and labels) to fill the half;
  - the headmatter gets offline defaults it lacks (no web-font provider, a local favicon), and
    loses the retired `slidev-addon-citations` addon.
Code (fenced and inline) is left exactly as written. Preparing refuses a deck that fails the check.

    python -m decktools.prepare talk/slides.md        # prints the prepared entry's path
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

import yaml

from decktools import references
from decktools.bib import Bibliography
from decktools.check import REPO_ROOT, check_deck
from decktools.citations import RenderedCitations, bibliography_pages, citation_html, plain_text, render_citations
from decktools.deckmeta import deck_meta, meta_path
from decktools.markdown import Slide, import_path, slide_range, split_slides
from decktools.mdscan import code_mask, speaker_notes
from decktools.numbering import entries_per_page, is_bibliography
from decktools.numbers import format_measured
from decktools.problems import counted, errors
from decktools.themes import RETIRED_ADDONS
from figures_src.runner import write_atomic

OFFLINE_HEADMATTER = {"favicon": "/favicon.svg", "fonts": {"provider": "none"}}
IMAGE_LAYOUTS = {"image", "image-left", "image-right"}
SRC_LINE = re.compile(r"^(\s*src:\s*)(\S+?\.md)(\s*(?:#.*)?)$")


def prepared_name(path: Path) -> Path:
    return path.with_name(path.stem + ".prepared.md")


def citation_of(ref: references.Reference, bib: Bibliography) -> tuple[str, ...]:
    """The citation as decktools.citations takes it: the deck's pandoc text itself (its prefixes
    and locators kept, a narrative one told apart), or the key of a <Cite>."""
    if ref.kind in ("pandoc", "narrative"):
        return (ref.text,)
    return tuple(ref.keys) if ref.kind != "doi" else (bib.key_for_doi(ref.target),)


def replacement(ref: references.Reference, bib: Bibliography, rendered: RenderedCitations, in_notes: bool) -> str:
    keys = citation_of(ref, bib)
    return plain_text(rendered.in_text[keys]) if in_notes else citation_html(keys, rendered)


def _note_lines(body: list[tuple[int, str]]) -> set[int]:
    """Line numbers of the slide's speaker notes (decktools.mdscan.speaker_notes)."""
    notes = speaker_notes(body)
    return {number for number, _ in body if notes and number in notes}


def rewrite_line(path: Path, number: int, original: str, masked: str, bib: Bibliography,
                 rendered: RenderedCitations, figures_dir: Path, in_notes: bool) -> str:
    """Apply the rewrites to one line, right to left so earlier columns stay valid."""
    edits = []
    for ref in references.citations_in_line(path, number, masked, bib.entries):
        edits.append((ref.column - 1, len(ref.text), replacement(ref, bib, rendered, in_notes)))
    for match in references.MEASURED.finditer(masked):
        attributes = dict(references.ATTRIBUTE.findall(match.group(1)))
        value = format_measured(attributes, figures_dir)
        label = f"{attributes['fig']}: {attributes['value']}"
        edits.append((match.start(), len(match.group(0)), f'<span class="measured" title="{label}">{value}</span>'))
    for start, length, new in sorted(edits, reverse=True):
        original = original[:start] + new + original[start + length:]
    return original


def bibliography_slides(lines: list[str], slide: Slide, end: int, pages: list[str]) -> list[str]:
    """The lines of the slides that replace a bibliography slide, one per page of entries.

    The first keeps the slide's own separator, frontmatter and notes; the others repeat its
    content (the heading) under the same frontmatter, with a zero time budget."""
    body_start = end - len(slide.body)
    notes = _note_lines(slide.body)
    content = [lines[number - 1] for number, _ in slide.body if number not in notes]  # citations rewritten
    first = lines[slide.start_line - 1:body_start] + content + ["", pages[0], ""] + \
        [lines[number - 1] for number, _ in slide.body if number in notes]
    following = {**{k: v for k, v in slide.frontmatter.items() if k != "biblio"}, "budget": 0}
    header = ["---", yaml.safe_dump(following, sort_keys=False, allow_unicode=True).rstrip("\n"), "---"]
    return first + [line for page in pages[1:] for line in header + content + ["", page, ""]]


def slides_of(deck, path: Path) -> list[Slide]:
    """The deck's visible slides of one file, in the file's order, each once (a file imported
    twice, or by two ranges, is prepared once). A hidden slide is left as written: Slidev never
    loads it, so its citations, <Measured> numbers and reference list are not made."""
    found = {slide.start_line: slide for slide in deck.visible_slides if slide.path == path}
    return [found[line] for line in sorted(found)]


def expand_bibliographies(path: Path, lines: list[str], deck, rendered: RenderedCitations) -> list[str]:
    """Replace each bibliography slide of this file, last first so earlier line numbers hold."""
    for slide in reversed(slides_of(deck, path)):
        if is_bibliography(slide):
            pages = bibliography_pages(rendered.entries, entries_per_page(slide, deck.headmatter))
            lines[slide.start_line - 1:slide.end_line] = bibliography_slides(lines, slide, slide.end_line, pages)
    return lines


def prepared_slide_counts(path: Path, deck, rendered: RenderedCitations) -> list[int]:
    """How many slides each slide of the file (in its order, as a #range counts them) becomes in
    its prepared copy: a bibliography slide one per page of the reference list, any other one."""
    pages = {slide.start_line: len(bibliography_pages(rendered.entries, entries_per_page(slide, deck.headmatter)))
             for slide in slides_of(deck, path) if is_bibliography(slide)}
    _, slides = split_slides(path, path.read_text(encoding="utf-8"))
    return [pages.get(slide.start_line, 1) for slide in slides]


def prepared_range(spec: str, counts: list[int]) -> str:
    """The #range of the prepared copy naming the slides that `spec` names of the original."""
    if all(count == 1 for count in counts):
        return spec
    firsts = list(itertools.accumulate([1] + counts[:-1]))
    chosen = [firsts[i - 1] + page for i in slide_range(spec, len(counts)) for page in range(counts[i - 1])]
    return ",".join(map(str, chosen)) or "none"


def rewrite_imports(path: Path, lines: list[str], deck, rendered: RenderedCitations) -> list[str]:
    """Point each `src:` line at the prepared copy of its file, its #range renumbered."""
    _, slides = split_slides(path, "\n".join(lines))
    for slide in slides:
        number = slide.key_lines.get("src")
        match = SRC_LINE.match(lines[number - 1]) if number else None
        if match:
            source, _, spec = str(slide.frontmatter["src"]).partition("#")
            counts = prepared_slide_counts(import_path(deck, path, slide), deck, rendered) if spec else []
            target = "#" + prepared_range(spec, counts) if spec else match.group(3)
            lines[number - 1] = match.group(1) + match.group(2)[:-3] + ".prepared.md" + target
    return lines


def prepare_file(path: Path, deck, bib: Bibliography, rendered: RenderedCitations, figures_dir: Path) -> str:
    lines = path.read_text(encoding="utf-8").split("\n")
    for slide in slides_of(deck, path):
        notes = _note_lines(slide.body)
        for (number, masked) in code_mask(slide.body):
            lines[number - 1] = rewrite_line(path, number, lines[number - 1], masked, bib, rendered,
                                             figures_dir, number in notes)
    lines = rewrite_imports(path, lines, deck, rendered)     # before the expansion moves lines
    return "\n".join(expand_bibliographies(path, lines, deck, rendered))


def with_offline_headmatter(text: str, headmatter: dict) -> str:
    """Re-write the entry's headmatter with the offline defaults it lacks."""
    merged = dict(headmatter)
    if isinstance(merged.get("addons"), list):
        merged["addons"] = [a for a in merged["addons"] if a not in RETIRED_ADDONS]
        if not merged["addons"]:
            del merged["addons"]
    for key, value in OFFLINE_HEADMATTER.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**value, **merged[key]}
    lines = text.split("\n")
    close = next(i for i in range(1, len(lines)) if lines[i].rstrip() == "---")
    dumped = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True).rstrip("\n")
    return "\n".join(["---", dumped] + lines[close:])


def shows_figure_whole(slide: Slide) -> bool:
    """An image layout showing a figure, with Slidev's cropping default (no backgroundSize)."""
    frontmatter = slide.frontmatter
    return (frontmatter.get("layout") in IMAGE_LAYOUTS and "backgroundSize" not in frontmatter
            and references.figure_id_of(str(frontmatter.get("image", ""))) is not None)


def with_whole_figures(path: Path, text: str) -> str:
    """Give each image-layout slide of a figure `backgroundSize: contain` (see the docstring);
    run last, on the prepared text, as it adds lines."""
    lines = text.split("\n")
    for slide in reversed(split_slides(path, text)[1]):
        if shows_figure_whole(slide):
            closing = slide.end_line - len(slide.body) - 1          # index of the frontmatter's closing ---
            lines.insert(closing, "backgroundSize: contain")
    return "\n".join(lines)


def prepare_deck(deck_path: Path, bib_path: Path | list[Path] | None = None,
                 models_dir: Path | None = None) -> Path:
    """Check, then write the prepared deck and its presenter metadata; return the prepared entry."""
    report = check_deck(deck_path, bib_path)
    failed = errors(report.problems)
    if failed:
        raise SystemExit("\n".join(map(str, failed)) + f"\nprepare: {deck_path} fails the check "
                         f"({counted(len(failed), 'error')}); fix them first")
    deck, bib, figures_dir = report.deck, report.bibliography, deck_path.parent / "public" / "figures"
    rendered = render_citations([citation_of(ref, bib) for ref in references.citations(deck.shown(), bib.entries)],
                                bib.files)
    for path in deck.files:
        text = prepare_file(path, deck, bib, rendered, figures_dir)
        if path == deck.entry and deck.headmatter:
            text = with_offline_headmatter(text, {**deck.headmatter, "deckMeta": f"deck-meta/{deck_path.stem}.json"})
        write_atomic(prepared_name(path), with_whole_figures(path, text))
    # numbered as the built deck is (decktools.numbering): a long bibliography is several slides
    meta = deck_meta(deck, figures_dir, models_dir or REPO_ROOT / "models", works=len(rendered.entries))
    write_atomic(meta_path(deck_path), json.dumps(meta, indent=1))
    return prepared_name(deck_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="prepare", description="Write the deck Slidev builds.")
    parser.add_argument("deck", type=Path)
    parser.add_argument("--bib", type=Path, action="append",
                        help="bib file(s) to use instead of those the deck's biblio.filename names")
    options = parser.parse_args(argv)
    print(prepare_deck(options.deck, options.bib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
