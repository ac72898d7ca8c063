"""Read citations.bib with bibtexparser 2 and report what would break citations in the deck.

    bibliography, problems = load_bibliography(Path("citations.bib"))
    bibliography.entries["olah2020zoom"]["title"]
    bibliography.key_for_doi("10.23915/distill.00024.001")   # -> "olah2020zoom"

Problems: syntax errors, duplicate keys, entries missing author, title or year (the fields every
citation style prints). Lines are 1-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser

from decktools.problems import Problem

REQUIRED_FIELDS = ("author", "title", "year")


@dataclass
class Bibliography:
    path: Path
    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def key_for_doi(self, doi: str) -> str | None:
        wanted = normalise_doi(doi)
        for key, fields in self.entries.items():
            if normalise_doi(fields.get("doi", "")) == wanted:
                return key
        return None


def normalise_doi(doi: str) -> str:
    """DOIs are case-insensitive; accept https://doi.org/ and doi: prefixes."""
    doi = doi.strip().lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if doi.startswith(prefix):
            doi = doi[len(prefix):]
    return doi


def load_bibliography(path: Path) -> tuple[Bibliography, list[Problem]]:
    """Parse the bib file; return what parsed and every problem found."""
    if not path.exists():
        return Bibliography(path), [Problem(path, 1, 1, "bibliography not found: create it "
                                           "(BibTeX) or pass BIB=path/to/citations.bib")]
    text, problems = _read_utf8(path)
    library = bibtexparser.parse_string(text)
    bibliography = Bibliography(path)
    for block in library.failed_blocks:
        line = block.start_line + 1
        if type(block).__name__ == "DuplicateBlockKeyBlock":
            problems.append(Problem(path, line, 1, f"duplicate key {block.key!r}: each entry needs its "
                                    f"own key (first defined at line {bibliography_line(library, block.key)})"))
        else:
            reason = getattr(block.error, "abort_reason", None) or block.error
            problems.append(Problem(path, line, 1, f"BibTeX syntax error ({reason}); "
                                    "check braces, quotes and commas in this entry"))
    problems += _stray_at_problems(path, library)
    for entry in library.entries:
        bibliography.entries[entry.key] = {f.key.lower(): str(f.value) for f in entry.fields}
        bibliography.lines[entry.key] = entry.start_line + 1
        problems += _entry_problems(path, entry)
    return bibliography, problems


def _read_utf8(path: Path) -> tuple[str, list[Problem]]:
    """The file's text; bytes that are not UTF-8 are replaced, and the first is a problem."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        return data.decode("utf-8", "replace"), [Problem(path, line, 1, f"not UTF-8 (byte "
                                                         f"{data[error.start]:#04x}); save the file as UTF-8")]


def _stray_at_problems(path: Path, library) -> list[Problem]:
    """bibtexparser keeps text outside entries as comments; one starting with @ is a broken entry."""
    return [Problem(path, block.start_line + 1, 1, f"{block.comment.strip()[:30]!r} is not an entry and "
                    "is ignored: write @type{key, field = {value}, ...} or remove it")
            for block in library.blocks
            if type(block).__name__ == "ImplicitComment" and block.comment.lstrip().startswith("@")]


def bibliography_line(library, key: str) -> int:
    return next((e.start_line + 1 for e in library.entries if e.key == key), 0)


def _entry_problems(path: Path, entry) -> list[Problem]:
    line, found = entry.start_line + 1, {f.key.lower(): f for f in entry.fields}
    if not entry.key.strip():
        return [Problem(path, line, 1, "entry without a key: write @type{key, ...} with a key to cite it by")]
    problems = [Problem(path, line, 1, f"entry {entry.key!r} is missing {name}: add `{name} = {{...}}`")
                for name in REQUIRED_FIELDS if not str(found.get(name).value if name in found else "").strip()]
    for field_ in entry.fields:  # bibtexparser swallows a missing comma into the previous value
        if getattr(field_, "enclosing", None) == "no-enclosing" and "=" in str(field_.value):
            problems.append(Problem(path, field_.start_line + 1, 1, f"entry {entry.key!r}: field "
                                    f"{field_.key!r} runs into the next field; a comma is missing"))
    return problems
