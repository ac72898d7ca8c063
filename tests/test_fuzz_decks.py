"""Property-based tests of the deck reader and the citation scanner on generated decks.

Three properties, each over 100 to 120 generated decks (derandomized, no example database, so
CI sees the same decks every run):
- the checker never crashes: check_deck reports Problems whose file and line exist, and read_deck
  returns a deck or raises DeckError naming a file and a line in it, whatever the deck holds
  (code fences of any length, open or closed; inline code; HTML comments; malformed frontmatter;
  `src:` imports that exist, are missing, cyclic, folders or not UTF-8; non-UTF-8 bytes; <Measured>
  tags with wrong digits or a broken numbers file);
- citations finds exactly the citations the generator placed outside code, with file, line and
  column, and none of those it placed inside fenced or inline code (CommonMark's rules, which
  Slidev's markdown-it applies; speaker notes are markdown too);
- split_slides cuts every file where Slidev's own parser (@slidev/parser from talk/node_modules,
  run by node) cuts it, with the same frontmatter.
"""
from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decktools.check import check_deck
from decktools.markdown import DeckError, read_deck, split_slides
from decktools.references import citations

REPO = Path(__file__).resolve().parent.parent
SLIDEV_PARSER = REPO / "talk" / "node_modules" / "@slidev" / "parser" / "dist" / "core.mjs"
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BIB = "@misc{alpha2020, author = {Alpha, Ann}, title = {A Study}, year = {2020}, doi = {10.1000/xyz}}\n"

WORD = st.text(string.ascii_letters + string.digits, min_size=1, max_size=6)
PLAIN = st.text(string.ascii_letters + string.digits + " .,;:!?*_#=", max_size=10)
KEY = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
DOI = st.from_regex(r"10\.[0-9]{4}/[a-z0-9.]{1,8}", fullmatch=True)


@dataclass(frozen=True)
class Cite:
    text: str
    kind: str                  # as references.Reference.kind: pandoc | bref | doi
    keys: tuple[str, ...] = ()
    target: str = ""


@dataclass
class Line:
    text: str
    cites: list[tuple[int, Cite]] = field(default_factory=list)   # (1-based column, cite) outside code


@st.composite
def citation(draw) -> Cite:
    form = draw(st.sampled_from(["one", "many", "locator", "bref", "bref'", "doi", "doi'"]))
    if form == "one":
        key = draw(KEY)
        return Cite(f"[@{key}]", "pandoc", (key,))
    if form in ("many", "locator"):
        keys = draw(st.lists(KEY, min_size=1 if form == "locator" else 2, max_size=3))
        locator = ", p. 3" if form == "locator" else ""
        return Cite("[" + "; ".join(f"@{k}" for k in keys) + locator + "]", "pandoc", tuple(keys))
    quote = "'" if form.endswith("'") else '"'
    ending = draw(st.sampled_from(["/>", " />", "></Cite>"]))
    if form.startswith("bref"):
        key = draw(KEY)
        return Cite(f"<Cite bref={quote}{key}{quote}{ending}", "bref", (key,))
    doi = draw(DOI)
    return Cite(f"<Cite input={quote}{doi}{quote}{ending}", "doi", target=doi)


@st.composite
def code_span(draw) -> str:
    """Inline code of n backticks holding citations and backtick runs of other lengths."""
    ticks = draw(st.integers(1, 3))
    inner = draw(st.lists(st.one_of(PLAIN, citation().map(lambda c: c.text),
                                    st.sampled_from(["`", "``", "```"]).filter(lambda r: len(r) != ticks)),
                          max_size=4))
    return "`" * ticks + " " + " ".join(inner) + " " + "`" * ticks


@st.composite
def text_line(draw, code: bool = True, unmatched_runs: bool = True) -> Line:
    """A one-line paragraph: words, citations, inline code, escaped and unmatched backticks.

    Lines that follow each other form one paragraph (as in a comment), where a run of backticks
    may close an equal run of an earlier line (markdown-it agrees): those get no unmatched runs."""
    pieces = [draw(st.one_of(WORD.map(lambda w: ("text", w)), citation().map(lambda c: ("cite", c))))]
    kinds = [WORD.map(lambda w: ("text", w)), PLAIN.map(lambda w: ("text", w)),
             citation().map(lambda c: ("cite", c)), st.just(("text", "\\`"))]
    if code:
        kinds.append(code_span().map(lambda s: ("text", s)))
    pieces += draw(st.lists(st.one_of(kinds), max_size=5))
    if code and unmatched_runs and draw(st.booleans()):   # no later run matches: literal, not code
        pieces.insert(draw(st.integers(1, len(pieces))), ("text", "`" * draw(st.integers(4, 5))))
    line = Line("")
    for kind, piece in pieces:
        line.text += " " if line.text else ""
        if kind == "cite":
            line.cites.append((len(line.text) + 1, piece))
            piece = piece.text
        line.text += piece
    return line


def code_only(line: Line) -> Line:
    """The same text placed inside code, where none of its citations may be found."""
    return Line(line.text)


@st.composite
def fence(draw, closed: bool = True, in_comment: bool = False) -> list[Line]:
    """A fenced block: its content (citations included) is code, never cited."""
    char = draw(st.sampled_from("`~"))
    length, indent = draw(st.integers(3, 6)), " " * draw(st.integers(0, 3))
    info = draw(st.sampled_from(["", "python", "md", "js {1,2}"]))
    content = [text_line().map(code_only), st.just(Line("")), st.just(Line("    indented [@x]"))]
    if length > 3:
        content.append(st.integers(3, length - 1).map(lambda n: Line(char * n + " nested")))
    if char == "`":     # a ``` line inside ~~~ would open a block for Slidev's splitter: none there
        content.append(st.integers(3, 6).map(lambda n: Line("~" * n)))
        if closed and not in_comment:    # Slidev's splitter skips closed ``` blocks whole
            content.append(st.sampled_from(["---", "<!--", "-->", "---\nlayout: center\n---"]).map(Line))
    lines = [Line(indent + char * length + info)] + draw(st.lists(st.one_of(content), max_size=4))
    if closed:
        lines.append(Line(indent + char * draw(st.integers(length, length + 2)) + draw(st.sampled_from(["", "  "]))))
    return [Line(t) for line in lines for t in line.text.split("\n")]


@st.composite
def note_line(draw) -> Line:
    """A line of a comment: the lines of a comment make one paragraph, so no unmatched backtick
    runs, and it starts with a word (a tag alone on a line would open an HTML block, raw to the
    next blank line: markdown-it agrees)."""
    line = draw(text_line(unmatched_runs=False))
    return Line("so " + line.text, [(column + 3, cite) for column, cite in line.cites])


@st.composite
def comment(draw, closed: bool = True) -> list[Line]:
    """An HTML comment (speaker notes): markdown inside, so its citations count, its code does not."""
    if closed and draw(st.booleans()):
        inner = draw(note_line())
        return [Line("<!-- " + inner.text + " -->", [(c + 5, cite) for c, cite in inner.cites])]
    first = draw(st.one_of(st.just(Line("<!--")), note_line().map(
        lambda l: Line("<!-- " + l.text, [(c + 5, cite) for c, cite in l.cites]))))
    middle = draw(st.lists(st.one_of(note_line().map(lambda l: [l]), fence(True, in_comment=True),
                                     st.just([Line("---")])), max_size=3))
    lines = [first] + [line for block in middle for line in block]
    open_fence = draw(st.booleans())    # a fence left open inside the comment ends with the comment
    if open_fence:
        lines += draw(fence(closed=False, in_comment=True))
    if closed and open_fence:
        lines.append(Line("-->"))
    elif closed:
        lines.append(draw(st.one_of(st.just(Line("-->")), note_line().map(lambda l: Line(l.text + " -->", l.cites)))))
    return lines


def block():
    return st.one_of(text_line().map(lambda l: [l]), fence(), comment())


@st.composite
def slide(draw, last_in_file: bool, frontmatter=None) -> list[Line]:
    """A slide's lines after its separator: optional frontmatter, then blocks between blank lines."""
    lines = [Line(t) for t in draw(frontmatter)] + [Line("---")] if frontmatter is not None else [Line("")]
    for blocklines in draw(st.lists(block(), max_size=4)):
        lines += blocklines + [Line("")]
    ending = [st.just([]), fence(closed=False).filter(lambda f: f[0].text.lstrip()[0] == "~")]
    if last_in_file:    # an open ``` or <!-- runs to the end of its file in Slidev's parser
        ending += [fence(closed=False), comment(closed=False)]
    return lines + draw(st.one_of(ending))


VALID_FRONTMATTER = st.lists(st.sampled_from(["layout: center", "class: text-sm", "hide: false",
                                              "title: Results", "level: 2"]), min_size=1, max_size=3, unique=True)


@st.composite
def deck_file(draw, imports: list[str] = (), headmatter=True) -> list[Line]:
    """A whole markdown file: headmatter, slides, and one slide per `src:` import."""
    lines = [Line("---"), Line("title: Fuzz"), Line("---"), Line("")] if headmatter else []
    slides = draw(st.lists(st.none() | VALID_FRONTMATTER, max_size=4))
    slides += [[f"src: {target}"] for target in imports]
    slides = draw(st.permutations(slides))
    for number, frontmatter in enumerate(slides):
        last = number == len(slides) - 1
        if frontmatter and frontmatter[0].startswith("src:"):
            lines += [Line("---")] + [Line(frontmatter[0]), Line("---"), Line("")]
            continue
        if lines or number or frontmatter is not None:
            lines.append(Line("---"))
        lines += draw(slide(last, None if frontmatter is None else st.just(frontmatter)))
    return lines


def write(path: Path, lines: list[Line]) -> list[tuple]:
    """Write the file; return (path, line, column, kind, keys, target) of the citations outside code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(line.text for line in lines) + "\n", encoding="utf-8")
    return [(path, number, column, cite.kind, cite.keys, cite.target)
            for number, line in enumerate(lines, start=1) for column, cite in line.cites]


@st.composite
def deck_with_imports(draw):
    pages = draw(st.integers(0, 2))
    targets = [draw(st.sampled_from([f"./pages/p{k}.md", f"pages/p{k}.md", f"/pages/p{k}.md"])) for k in range(pages)]
    return draw(deck_file(targets)), [draw(deck_file(headmatter=draw(st.booleans()))) for _ in range(pages)]


@settings(FUZZ, max_examples=100)      # the richest decks, so fewer of them
@given(deck_with_imports())
def test_citations_found_outside_code_and_never_inside(generated):
    entry_lines, pages = generated
    with tempfile.TemporaryDirectory() as folder:
        entry = Path(folder).resolve() / "talk" / "slides.md"
        expected = write(entry, entry_lines)
        for k, page in enumerate(pages):
            expected += write(entry.parent / "pages" / f"p{k}.md", page)
        found = [(r.path, r.line, r.column, r.kind, tuple(r.keys), r.target) for r in citations(read_deck(entry))]
        assert sorted(found, key=str) == sorted(expected, key=str)


# --- never crash: anything at all in a deck ---------------------------------------------------

TOKENS = ["`", "``", "```", "````", "~~~", "---", "----", "<!--", "-->", "[@", "@", "]", "[", "; ",
          "<Cite ", "bref=", "input=", '"', "'", "k1", "/>", ">", "<Measured ", "fig=", "value=",
          "digits=", "demo/plot", "accuracy", "-1", "x", "![", "](", ")", "/figures/", "src: ",
          "url(", "  ", "\t", "#", "é", ",", ":", "\\", "\u2028", "\x00"]
JUNK_LINE = st.lists(st.sampled_from(TOKENS), max_size=8).map("".join)
BAD_FRONTMATTER = st.sampled_from([
    "layout: [two-cols", "a: b: c", "- a list", "key: 'unterminated", "\tkey: tab", "src: .",
    "src: [a, b]", "src: 3", "src: ''", "src: ./missing.md", "src: ./slides.md", "src: ./pages/p0.md",
    "src: ./pages/p1.md", "src: /pages", "src: ./latin1.md", 'src: "a\\0b"', "title: [@x]",
    "hide: true", "? complex key", "!!binary x", "src: " + "../" * 3 + "etc", "&a [*a]"])


@st.composite
def measured_tag(draw) -> str:
    """A <Measured> tag; its figure, value, digits may each be wrong."""
    quote = draw(st.sampled_from(["'", '"']))
    attributes = {"fig": draw(st.sampled_from(["demo/plot", "demo/bad-json", "demo/none", "../x"])),
                  "value": draw(st.sampled_from(["accuracy", "accuracy.x", ""]))}
    extras = {"digits": ["1", "x", "-1", "", "400"], "percent": ["true", "no"], "unit": [" s"]}
    for name in draw(st.lists(st.sampled_from(sorted(extras)), unique=True)):
        attributes[name] = draw(st.sampled_from(extras[name]))
    return "<Measured " + " ".join(f"{n}={quote}{v}{quote}" for n, v in attributes.items()) + "/>"


@st.composite
def junk_file(draw) -> str:
    """Any mix of structure and junk, including frontmatter that is malformed or imports badly."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["junk", "blocks", "frontmatter", "separator", "measured"]))
        if kind == "measured":
            parts.append(draw(measured_tag()))
        elif kind == "junk":
            parts += draw(st.lists(JUNK_LINE, max_size=4))
        elif kind == "blocks":
            parts += [line.text for b in draw(st.lists(block(), max_size=2)) for line in b]
        elif kind == "frontmatter":
            parts += ["---"] + draw(st.lists(st.one_of(BAD_FRONTMATTER, VALID_FRONTMATTER.map("\n".join)),
                                             min_size=1, max_size=2)) + draw(st.sampled_from([["---"], []]))
        else:
            parts += [draw(st.sampled_from(["---", "", "---\n", "----"]))]
    return "\n".join(parts)


def assert_names_a_line(path: Path, line: int):
    """The place a problem names is a line of a file that exists."""
    assert path.is_file(), path
    count = len(re.split(rb"\r\n|\r|\n", path.read_bytes()))   # as Python's universal newlines count
    assert 1 <= line <= count, (path, line, count)


@settings(FUZZ, max_examples=100)
@given(junk_file(), st.lists(junk_file(), min_size=2, max_size=2), st.booleans())
def test_the_checker_never_crashes(entry_text, page_texts, latin1_entry):
    with tempfile.TemporaryDirectory() as folder:
        talk = Path(folder) / "talk"
        (talk / "pages").mkdir(parents=True)
        (talk / "public" / "figures" / "demo").mkdir(parents=True)
        (talk / "public" / "figures" / "demo" / "plot.json").write_text('{"accuracy": 0.5}')
        (talk / "public" / "figures" / "demo" / "bad-json.json").write_text('{"accuracy": ')
        (Path(folder) / "citations.bib").write_text(BIB)
        entry = talk / "slides.md"
        entry.write_bytes(entry_text.encode("latin-1", "replace") + b"\xe9\xff" if latin1_entry
                          else entry_text.encode("utf-8"))
        for k, text in enumerate(page_texts):
            (talk / "pages" / f"p{k}.md").write_text(text, encoding="utf-8")
        (talk / "latin1.md").write_bytes(b"# caf\xe9\n")
        report = check_deck(entry, Path(folder) / "citations.bib")
        for problem in report.problems:
            assert_names_a_line(problem.path, problem.line)
        try:
            deck = read_deck(entry)
        except DeckError as error:
            assert_names_a_line(error.path, error.line)
        else:
            assert deck.files[0] == entry


# --- the slide splitter agrees with Slidev's own ------------------------------------------------

NODE_SPLITTER = """
import { createInterface } from 'node:readline'
const { parseSync } = await import(process.argv[1])
for await (const line of createInterface({ input: process.stdin })) {
  const slides = parseSync(JSON.parse(line), 'fuzz.md').slides
  console.log(JSON.stringify(slides.map(s => [s.start, s.contentStart, s.end, s.frontmatter])))
}
"""


@pytest.fixture(scope="module")
def slidev_split():
    """Send a file's text to @slidev/parser's parseSync; get [(start, content start, end, frontmatter)]."""
    if not shutil.which("node") or not SLIDEV_PARSER.exists():
        pytest.fail("needs node and talk/node_modules: run `make test` (it runs npm ci in talk/) or `make node`")
    process = subprocess.Popen(["node", "--input-type=module", "-e", NODE_SPLITTER, SLIDEV_PARSER.as_uri()],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def split(text: str) -> list:
        process.stdin.write(json.dumps(text) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())
    yield split
    process.stdin.close()
    process.wait(timeout=10)


STRUCTURE_LINE = st.sampled_from(["---", "----", "--- x", "---  ", "```", "````", "  ```", "```js", "~~~",
                                  "<!--", "-->", "a <!-- b", "c --> d", "<!-- e -->", "text", "",
                                  "layout: center", "class: x"])


@FUZZ
@given(st.one_of(st.lists(STRUCTURE_LINE, max_size=14).map("\n".join),
                 deck_file().map(lambda lines: "\n".join(line.text for line in lines))))
def test_slides_split_where_slidev_splits_them(slidev_split, text):
    try:
        _, slides = split_slides(Path("fuzz.md"), text)
    except DeckError:
        return      # malformed or unclosed frontmatter: an error here, Slidev guesses
    ours = [(s.frontmatter if s.frontmatter_line else None, [n for n, _ in s.body]) for s in slides]
    # Slidev also takes a slide's text up to any later "---" as frontmatter when the slide starts
    # with a --- it did not read as a frontmatter block; that quirk is left out: we read it as body.
    theirs = [(frontmatter if content > start else None, list(range(content + 1, end + 1)))
              for start, content, end, frontmatter in slidev_split(text)]
    assert ours == theirs
