"""Read a deck's bib files with bibtexparser 2 and report what would break citations in the deck.

    bibliography, problems = load_bibliography(Path("citations.bib"))
    bibliography.entries["olah2020zoom"]["title"]
    bibliography.key_for_doi("10.23915/distill.00024.001")   # -> "olah2020zoom"
    files, problems = deck_bib_files(deck_path, deck.headmatter)   # what `biblio.filename` names
    bibliography, problems = load_bibliographies(files)             # several files, merged

A deck's headmatter `biblio: filename:` names one file or a list; each is looked up beside the
deck, then in <deck folder>/public/biblio/, and `citations.bib` finally in the repository (the
deck folder's parent, then this repository), which is also the default when none is named.
Several files merge; a key defined in two of them is an error naming both places.

Problems: syntax errors, duplicate keys, entries missing what an APA reference prints: a title, a
year (biblatex's `date = {2017-07-17}`, as Zotero's Better BibLaTeX exports it, counts; a date
pandoc cannot read would print "n.d.", so it is refused) and an author (an editor counts; a web
page, @misc, @manual, software or data set may have none: APA then puts its title first, as
pandoc does). An entry with `crossref = {parent}` takes what it lacks from its parent entry in the
same file, as biblatex, and so pandoc, has it (each file is read alone): year, date, author and
editor always, the title only where biblatex does not make the parent's title the child's
booktitle (an @inproceedings from its @proceedings, @inbook from @book, ...); a crossref to no
entry of the file is an error. A field's bare word (`journal = distill`) is an @string macro of
the file, or a month (jan..dec): any other is an error, as pandoc would print the word as text.
Lines are 1-based.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser

from decktools.problems import Problem
from figures_src.runner import did_you_mean

# bibtexparser logs each block it gives up on, counting lines from 0; our Problem for that block
# says it once, 1-based, with what to do. Errors it logs before raising (its own bugs) still show.
logging.getLogger("bibtexparser").setLevel(logging.ERROR)

# each required field, with the fields that stand for it (biblatex's date for BibTeX's year)
REQUIRED_FIELDS = {"author": ("author", "editor"), "title": ("title",), "year": ("year", "date")}
AUTHORLESS_TYPES = {"online", "www", "electronic", "misc", "manual", "software", "dataset"}
# biblatex's (EDTF) dates that pandoc prints as a year: 2017, 2016-06, 2017-07-17, 2016?, 2016/2017
DATE = re.compile(r"^-?\d{4}(-\d{2}){0,2}[?~]?(/\d{4}(-\d{2}){0,2}[?~]?)?$")
DEFAULT_NAME = "citations.bib"
REPOSITORY_BIB = Path(__file__).resolve().parent.parent / DEFAULT_NAME
# biblatex's data inheritance (biblatex.def): a parent of these types gives the child types named
# its title as booktitle, maintitle or journaltitle, not as title; other pairs copy the title too
TITLE_ELSEWHERE = {
    "mvbook": {"book", "inbook", "bookinbook", "suppbook"},
    "mvcollection": {"collection", "reference", "incollection", "inreference", "suppcollection"},
    "mvreference": {"collection", "reference", "incollection", "inreference", "suppcollection"},
    "mvproceedings": {"proceedings", "inproceedings"},
    "book": {"inbook", "bookinbook", "suppbook"},
    "collection": {"incollection", "inreference", "suppcollection"},
    "reference": {"incollection", "inreference", "suppcollection"},
    "proceedings": {"inproceedings"},
    "periodical": {"article", "suppperiodical"},
}
ENTRY_START = re.compile(r"^\s*@(\w+)\s*\{\s*([^,\s]+)\s*,", re.M)
MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
# one part of a field value joined by #: "quoted", {braced} (three levels deep) or a bare word
VALUE_PART = re.compile(r'\s*(?:"[^"]*"|\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|([^\s#"{}]+))\s*(?:#|$)')


@dataclass
class Bibliography:
    path: Path
    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)   # key -> the file that defines it
    files: list[Path] = field(default_factory=list)

    @property
    def names(self) -> str:
        """'citations.bib' or 'citations.bib, mine.bib', for messages."""
        return ", ".join(p.name for p in self.files) or self.path.name

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


def load_bibliography(path: Path, elsewhere: dict[str, Path] | None = None) -> tuple[Bibliography, list[Problem]]:
    """Parse the bib file; return what parsed and every problem found. elsewhere: the keys of the
    deck's other bib files and their file (a crossref parent there is named)."""
    if not path.exists():
        return Bibliography(path), [Problem(path, 1, 1, "bibliography not found: create it (BibTeX), "
                                           "or fix the name (the deck's headmatter `biblio: filename:`, "
                                           "or the --bib path)")]
    text, problems = _read_utf8(path)
    library = bibtexparser.parse_string(text)
    bibliography = Bibliography(path, files=[path])
    for block in library.failed_blocks:
        line = block.start_line + 1
        if type(block).__name__ == "DuplicateBlockKeyBlock":
            problems.append(Problem(path, line, 1, f"duplicate key {block.key!r}: each entry needs its "
                                    f"own key (first defined at line {bibliography_line(library, block.key)})"))
        else:
            reason = getattr(block.error, "abort_reason", None) or block.error
            problems.append(Problem(path, line, 1, f"BibTeX syntax error ({str(reason).strip()}); "
                                    "check braces, quotes and commas in this entry"))
    problems += _stray_at_problems(path, library)
    by_key = {entry.key: entry for entry in library.entries}
    macros = {block.key for block in library.strings}
    for entry in library.entries:
        bibliography.entries[entry.key] = {f.key.lower(): str(f.value) for f in entry.fields}
        bibliography.lines[entry.key] = entry.start_line + 1
        bibliography.sources[entry.key] = path
        parent, crossref_problems = _crossref_parent(path, entry, by_key, elsewhere or {})
        problems += crossref_problems or _entry_problems(path, entry, _inherited(entry, parent))
        problems += _macro_problems(path, entry, macros)
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


def _crossref_parent(path: Path, entry, by_key: dict, elsewhere: dict[str, Path]) -> tuple[object | None, list[Problem]]:
    """The entry's crossref parent in this file (None without a crossref), or the problem that
    the key names no entry of the file (saying so when it is in another of the deck's files)."""
    fields = {f.key.lower(): str(f.value).strip() for f in entry.fields}
    parent = fields.get("crossref")
    if not parent or parent in by_key:
        return by_key.get(parent), []
    line = entry.start_line + 1
    if parent in elsewhere:
        return None, [Problem(path, line, 1, f"entry {entry.key!r}: its crossref parent {parent!r} is in "
                              f"{elsewhere[parent].name}, not {path.name}: move it into {path.name} (pandoc "
                              "reads each bib file alone, so it would not fill in this entry's fields)")]
    others = [key for key in by_key if key != entry.key]
    return None, [Problem(path, line, 1, f"entry {entry.key!r}: crossref {{{parent}}} is no entry "
                          f"of {path.name}{did_you_mean(parent, others)}: fix the key, or add the parent entry "
                          "to this file (pandoc reads each bib file alone)")]


def _inherited(entry, parent) -> dict:
    """The fields the entry takes from its crossref parent (see TITLE_ELSEWHERE), by name."""
    if parent is None:
        return {}
    fields = {f.key.lower(): f for f in parent.fields}
    if entry.entry_type.lower() in TITLE_ELSEWHERE.get(parent.entry_type.lower(), ()):
        fields.pop("title", None)
    return fields


def _macro_problems(path: Path, entry, macros: set[str]) -> list[Problem]:
    """A bare word in a field that is neither an @string of this file nor a month: pandoc would
    print it as text (bibtexparser has already replaced the macros it knows)."""
    known = {name.lower() for name in macros} | MONTHS
    problems = []
    for field_ in entry.fields:
        value = str(field_.value)
        if getattr(field_, "enclosing", None) != "no-enclosing" or "=" in value:
            continue   # a braced or quoted value, or one that ran into the next field (reported)
        for word in [m.group(1) for m in VALUE_PART.finditer(value) if m.group(1)]:
            if not word.isdigit() and word.lower() not in known:
                problems.append(Problem(path, field_.start_line + 1, 1, f"entry {entry.key!r}: field {field_.key!r} "
                                        f"uses the @string {word!r}, which {path.name} does not define"
                                        f"{did_you_mean(word, [*macros, *sorted(MONTHS)])}: fix the name, define it with "
                                        f"@string{{{word} = {{...}}}}, or brace the text: {{{word}}}"))
    return problems


def _entry_problems(path: Path, entry, inherited: dict | None = None) -> list[Problem]:
    """Missing required fields (counting those inherited by crossref), a date pandoc cannot read,
    a missing comma."""
    line, found = entry.start_line + 1, {f.key.lower(): f for f in entry.fields}
    if not entry.key.strip():
        return [Problem(path, line, 1, "entry without a key: write @type{key, ...} with a key to cite it by")]
    problems = [Problem(path, line, 1, f"entry {entry.key!r} is missing {name}: add `{name} = {{...}}`"
                        + (" (or biblatex's `date = {YYYY-MM-DD}`)" if name == "year" else ""))
                for name in _missing_fields(entry.entry_type.lower(), {**(inherited or {}), **found})]
    date = str(found["date"].value).strip() if "date" in found else ""
    if date and not DATE.match(date):
        problems.append(Problem(path, found["date"].start_line + 1, 1, f"entry {entry.key!r}: date {{{date}}} is "
                                "not a biblatex date and would print as n.d.: write it as YYYY, YYYY-MM or "
                                "YYYY-MM-DD (a range as 2016/2017)"))
    for field_ in entry.fields:  # bibtexparser swallows a missing comma into the previous value
        if getattr(field_, "enclosing", None) == "no-enclosing" and "=" in str(field_.value):
            problems.append(Problem(path, field_.start_line + 1, 1, f"entry {entry.key!r}: field "
                                    f"{field_.key!r} runs into the next field; a comma is missing"))
    return problems


def _missing_fields(entry_type: str, found: dict) -> list[str]:
    """The required fields (REQUIRED_FIELDS) that no field of the entry stands for; an entry of
    an AUTHORLESS_TYPES type needs no author."""
    def given(name: str) -> bool:
        return name in found and bool(str(found[name].value).strip())
    return [name for name, fields in REQUIRED_FIELDS.items()
            if not any(map(given, fields)) and not (name == "author" and entry_type in AUTHORLESS_TYPES)]


def load_bibliographies(paths: list[Path]) -> tuple[Bibliography, list[Problem]]:
    """Merge several bib files in order; a key defined in two files is an error at the second."""
    merged = Bibliography(paths[0] if paths else REPOSITORY_BIB, files=list(paths))
    problems: list[Problem] = []
    keys = {key: path for path in paths for key in _entry_keys(path)}
    for path in paths:
        bibliography, found = load_bibliography(path, {k: p for k, p in keys.items() if p != path})
        problems += found
        for key, fields in bibliography.entries.items():
            line = bibliography.lines[key]
            if key in merged.entries:
                first = f"{merged.sources[key]}:{merged.lines[key]}"
                problems.append(Problem(path, line, 1, f"key {key!r} is defined twice, at {first} and "
                                        f"{path}:{line}: keep one entry, or rename one and its citations"))
                continue
            merged.entries[key], merged.lines[key], merged.sources[key] = fields, line, path
    return merged, problems


def _entry_keys(path: Path) -> list[str]:
    """The keys a bib file defines, read cheaply (for naming a crossref parent in another file)."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return [key for kind, key in ENTRY_START.findall(text) if kind.lower() not in ("string", "comment", "preamble")]


def bib_candidates(deck_path: Path, name: str) -> list[Path]:
    """Where a `biblio.filename` is looked for, in order."""
    if Path(name).is_absolute():
        return [Path(name)]
    folder = deck_path.parent
    found = [folder / name, folder / "public" / "biblio" / name]
    if name == DEFAULT_NAME:
        found += [folder.parent / DEFAULT_NAME, REPOSITORY_BIB]
    return list(dict.fromkeys(found))


def deck_bib_files(deck_path: Path, headmatter: dict) -> tuple[list[Path], list[Problem]]:
    """The bib files a deck's headmatter names (default citations.bib), and any not found."""
    biblio = headmatter.get("biblio") if isinstance(headmatter.get("biblio"), dict) else {}
    names = biblio.get("filename") or DEFAULT_NAME
    files, problems = [], []
    for name in [names] if isinstance(names, str) else list(names):
        candidates = bib_candidates(deck_path, str(name))
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            problems.append(Problem(deck_path, _line_naming(deck_path, str(name)), 1, f"bibliography {name} "
                                    f"not found (looked for {', '.join(map(str, candidates))}): create it "
                                    "or fix biblio.filename in the headmatter (the deck's citations are "
                                    "checked once it is found)"))
        elif found not in files:
            files.append(found)
    return files, problems


def _line_naming(path: Path, name: str) -> int:
    """The first line of the file that mentions name (the headmatter's), else 1."""
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    return next((number for number, text in enumerate(lines, start=1) if name in text), 1)
