"""Property-based tests of the bib loader on malformed bibliographies.

Valid BibTeX entries are generated, then broken: truncated, a brace, comma or key taken out, an
entry duplicated, a stray @, bytes that are not UTF-8, a required field left empty, junk pasted in.
Whatever the file holds, load_bibliography and check_deck return Problems, each naming the bib
file (or the deck) and a line that exists in it, and never raise. Breakages that are certainly
wrong (a duplicate key, a missing key, a stray @, non-UTF-8 bytes, an empty author, title or year)
yield at least one problem when nothing else was done to the file. Derandomized, no example database: CI sees the same files.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decktools.bib import load_bibliography
from decktools.check import check_deck

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEY = st.from_regex(r"[a-z][a-z0-9_:-]{0,10}", fullmatch=True)
VALUE = st.text("abcdefgh XYZ.,-:", min_size=1, max_size=12).map(str.strip).filter(bool)
CERTAIN = ("duplicate", "no key", "stray @", "not utf-8", "empty field")


@st.composite
def entry(draw, key: str) -> str:
    kind = draw(st.sampled_from(["article", "misc", "inproceedings", "book", "online"]))
    fields = {"author": draw(VALUE), "title": draw(VALUE), "year": str(draw(st.integers(1900, 2030)))}
    fields.update(draw(st.dictionaries(st.sampled_from(["journal", "doi", "url", "note"]), VALUE, max_size=2)))
    lines = []
    for name, value in fields.items():
        style = draw(st.sampled_from(["{}", '""', "bare"])) if name == "year" else draw(st.sampled_from(["{}", '""']))
        lines.append(f"  {name} = " + (value if style == "bare" else style[0] + value + style[1]))
    return f"@{kind}{{{key},\n" + ",\n".join(lines) + draw(st.sampled_from(["\n}", ",\n}"]))


@st.composite
def valid_bib(draw) -> list[str]:
    keys = draw(st.lists(KEY, min_size=1, max_size=4, unique=True))
    return [draw(entry(key)) for key in keys]


def _at(draw, text: str, pattern: str) -> re.Match | None:
    matches = list(re.finditer(pattern, text))
    return draw(st.sampled_from(matches)) if matches else None


@st.composite
def broken_bib(draw) -> tuple[bytes, set[str]]:
    """(file bytes, the breakages applied)."""
    entries = draw(valid_bib())
    applied = set()
    for breakage in draw(st.lists(st.sampled_from(["truncate", "brace", "comma", "no key", "duplicate",
                                                   "stray @", "not utf-8", "empty field", "junk"]),
                                  min_size=1, max_size=3)):
        index = draw(st.integers(0, len(entries) - 1))
        text = entries[index]
        if breakage == "duplicate":
            entries.append(text)
        elif breakage == "no key":
            entries[index] = re.sub(r"\{[^,\n]*,", "{" + draw(st.sampled_from(["", " "])) + ",", text, count=1)
        elif breakage == "empty field":
            name = draw(st.sampled_from(["author", "title", "year"]))
            entries[index] = re.sub(rf"({name} = )[^\n]*?(,?\n)", r"\1{}\2", text, count=1)
        elif breakage == "stray @":
            entries.insert(index, draw(st.sampled_from(["@", "@@", "@ article", "@misc", "@{"])))
        elif breakage == "junk":
            entries.insert(index, "".join(draw(st.lists(st.sampled_from(list("{}@,=\"#%\\ \nab")), max_size=12))))
        elif breakage in ("brace", "comma") and (match := _at(draw, text, r"[{}]" if breakage == "brace" else ",")):
            entries[index] = text[:match.start()] + text[match.end():]
        elif breakage == "truncate":
            entries[index] = text[:draw(st.integers(0, len(text)))]
            del entries[index + 1:]
        applied.add(breakage)
    data = "\n\n".join(entries).encode("utf-8") + b"\n"
    if "not utf-8" in applied:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\x80\x80"])) + data[at:]
    return data, applied


def line_count(path: Path) -> int:
    return len(re.split(rb"\r\n|\r|\n", path.read_bytes()))


@FUZZ
@given(broken_bib())
def test_a_malformed_bib_yields_problems_with_file_and_line(broken):
    data, applied = broken
    with tempfile.TemporaryDirectory() as folder:
        bib = Path(folder) / "citations.bib"
        bib.write_bytes(data)
        _, problems = load_bibliography(bib)
        for problem in problems:
            assert problem.path == bib and 1 <= problem.line <= line_count(bib), (str(problem), data)
        if applied <= set(CERTAIN):    # (truncation or junk could undo them)
            assert problems, (applied, data)
        deck = Path(folder) / "talk" / "slides.md"
        deck.parent.mkdir()
        deck.write_text("---\ntitle: T\n---\n\n# Cites [@a] and <Cite bref='b'/>\n")
        for problem in check_deck(deck, bib).problems:
            assert problem.path in (bib, deck) and 1 <= problem.line <= line_count(problem.path), str(problem)
