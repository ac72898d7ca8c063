"""Write the deck that Slidev builds: talk/<deck>.prepared.md (and one per `src:` import).

The speaker edits talk/slides.md; Slidev is given the prepared copy, in which
  - `[@a; @b]` becomes `<Cite bref="a"/>; <Cite bref="b"/>` (the citations addon's own preparser
    would make one key "a; @b" and would also rewrite code), in speaker notes "(Author Year)";
  - `<Cite input="DOI"/>` of a DOI in citations.bib becomes `<Cite bref="key"/>`, so the built
    deck never fetches a DOI over the network;
  - `<Measured .../>` becomes the number from the figure's JSON;
  - `src:` imports point to the prepared copies;
  - the headmatter gets offline defaults it lacks (no web-font provider, a local favicon).
talk/public/biblio/citations.bib is generated from citations.bib here; never edit it by hand.
Code (fenced and inline) is left exactly as written. Preparing refuses a deck that fails the check.

    python -m decktools.prepare talk/slides.md        # prints the prepared entry's path
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from decktools import references
from decktools.bib import Bibliography
from decktools.check import DEFAULT_BIB, REPO_ROOT, check_deck
from decktools.deckmeta import deck_meta
from decktools.markdown import code_mask
from decktools.numbers import format_measured
from decktools.problems import errors

OFFLINE_HEADMATTER = {"favicon": "/favicon.svg", "fonts": {"provider": "none"}}
SRC_LINE = re.compile(r"^(\s*src:\s*)(\S+?\.md)(\s*(?:#.*)?)$")


def prepared_name(path: Path) -> Path:
    return path.with_name(path.stem + ".prepared.md")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False, suffix=".tmp",
                                     **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
        handle.write(data)
    os.replace(handle.name, path)


def short_citation(key: str, bib: Bibliography) -> str:
    """'(Olah et al. 2020)' for speaker notes, where components do not render."""
    fields = bib.entries.get(key, {})
    authors = [a.strip() for a in fields.get("author", key).split(" and ")]
    surname = authors[0].split(",")[0].split()[-1] if "," not in authors[0] else authors[0].split(",")[0]
    more = " et al." if len(authors) > 2 else (f" and {authors[1].split(',')[0].split()[-1]}" if len(authors) == 2 else "")
    return f"({surname}{more} {fields.get('year', '')})".replace(" )", ")")


def replacement(ref: references.Reference, bib: Bibliography, in_notes: bool) -> str | None:
    keys = ref.keys if ref.kind != "doi" else [bib.key_for_doi(ref.target)]
    if in_notes:
        return "; ".join(short_citation(k, bib) for k in keys)
    if ref.kind == "bref":
        return None  # already what the addon renders
    return "; ".join(f'<Cite bref="{key}"/>' for key in keys)


def _note_lines(body: list[tuple[int, str]]) -> set[int]:
    """Line numbers inside HTML comments (Slidev's speaker notes)."""
    inside, lines = False, set()
    for number, text in body:
        opened = "<!--" in text
        if inside or opened:
            lines.add(number)
        if opened and "-->" not in text.split("<!--", 1)[1]:
            inside = True
        elif inside and "-->" in text:
            inside = False
    return lines


def rewrite_line(path: Path, number: int, original: str, masked: str, bib: Bibliography,
                 figures_dir: Path, in_notes: bool) -> str:
    """Apply the rewrites to one line, right to left so earlier columns stay valid."""
    edits = []
    for ref in references.citations_in_line(path, number, masked):
        new = replacement(ref, bib, in_notes)
        if new is not None:
            edits.append((ref.column - 1, len(ref.text), new))
    for match in references.MEASURED.finditer(masked):
        attributes = dict(references.ATTRIBUTE.findall(match.group(1)))
        value = format_measured(attributes, figures_dir)
        label = f"{attributes['fig']}: {attributes['value']}"
        edits.append((match.start(), len(match.group(0)), f'<span class="measured" title="{label}">{value}</span>'))
    for start, length, new in sorted(edits, reverse=True):
        original = original[:start] + new + original[start + length:]
    return original


def prepare_file(path: Path, deck, bib: Bibliography, figures_dir: Path) -> str:
    lines = path.read_text(encoding="utf-8").split("\n")
    for slide in (s for s in deck.slides if s.path == path):
        notes = _note_lines(slide.body)
        for (number, masked) in code_mask(slide.body):
            lines[number - 1] = rewrite_line(path, number, lines[number - 1], masked, bib, figures_dir,
                                             number in notes)
    lines = [SRC_LINE.sub(lambda m: m.group(1) + m.group(2)[:-3] + ".prepared.md" + m.group(3), line)
             for line in lines]
    return "\n".join(lines)


def with_offline_headmatter(text: str, headmatter: dict) -> str:
    """Re-write the entry's headmatter with the offline defaults it lacks."""
    merged = dict(headmatter)
    for key, value in OFFLINE_HEADMATTER.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**value, **merged[key]}
    lines = text.split("\n")
    close = next(i for i in range(1, len(lines)) if lines[i].rstrip() == "---")
    dumped = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True).rstrip("\n")
    return "\n".join(["---", dumped] + lines[close:])


def prepare_deck(deck_path: Path, bib_path: Path = DEFAULT_BIB, models_dir: Path | None = None) -> Path:
    """Check, then write the prepared deck and the served bibliography; return the prepared entry."""
    report = check_deck(deck_path, bib_path)
    failed = errors(report.problems)
    if failed:
        raise SystemExit("\n".join(map(str, failed)) + f"\nprepare: {deck_path} fails the check "
                         f"({len(failed)} errors); fix them first")
    deck, figures_dir = report.deck, deck_path.parent / "public" / "figures"
    for path in deck.files:
        text = prepare_file(path, deck, report.bibliography, figures_dir)
        if path == deck.entry and deck.headmatter:
            text = with_offline_headmatter(text, {**deck.headmatter, "deckMeta": f"deck-meta/{deck_path.stem}.json"})
        write_atomic(prepared_name(path), text)
    write_atomic(deck_path.parent / "public" / "biblio" / "citations.bib", bib_path.read_bytes())
    meta = deck_meta(deck, figures_dir, models_dir or REPO_ROOT / "models")
    write_atomic(deck_path.parent / "public" / "deck-meta" / f"{deck_path.stem}.json", json.dumps(meta, indent=1))
    return prepared_name(deck_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="prepare", description="Write the deck Slidev builds.")
    parser.add_argument("deck", type=Path)
    parser.add_argument("--bib", type=Path, default=DEFAULT_BIB)
    options = parser.parse_args(argv)
    print(prepare_deck(options.deck, options.bib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
