"""decktools.mdscan against the markdown-it and @slidev/parser that Slidev runs (talk/node_modules).

The reference: each marker [@mN] in a snippet is code exactly when markdown-it (JavaScript,
html: true, as Slidev configures it) renders it inside <code>; a marker the scanner leaves in the
masked text must sit at the line and column where it was written. Images and links are compared
with the src and href markdown-it renders, speaker notes with those @slidev/parser finds. Code in
comments is left out here: Slidev renders the notes as markdown of their own, which
tests/test_fuzz_decks.py and test_check.py cover.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from decktools.mdscan import code_mask, links, speaker_notes

REPO = Path(__file__).resolve().parent.parent
MARKDOWN_IT = REPO / "talk" / "node_modules" / "markdown-it"
MARKER = re.compile(r"\[@m\d+\]")

SNIPPETS = [
    "a `` two\n[@m0] lines `` [@m1]",                          # a code span across lines
    "- item `[@m0]`\n\n      indented [@m1]\n\n> quoted `x` [@m2]",
    "    indented code [@m0]\n\nafter [@m1]",                  # 4 spaces: an indented code block
    '<Cite bref="x"/>\n```\n[@m0]\n```\n\n[@m1]',             # an HTML block is raw to the blank line
    "| a | b |\n|---|---|\n| `[@m0]` | [@m1] |",                # tables, as Slidev enables them
    "\\`[@m0]` and ``[@m1]` and ```[@m2]```",                  # escaped and unmatched runs
    "1. list\n   ```\n   [@m0]\n   ```\n2. [@m1]",
    "```\nunclosed [@m0]\n\n# still code [@m1]",
]


def markdown_it_render(snippets: list[str]) -> list[str]:
    if not shutil.which("node") or not MARKDOWN_IT.exists():
        pytest.fail("needs node and talk/node_modules: run `make test` (it runs npm ci in talk/) or `make node`")
    script = ("const md = require(process.argv[1])({html: true});"
              "process.stdout.write(JSON.stringify(JSON.parse(process.argv[2]).map(s => md.render(s))))")
    result = subprocess.run(["node", "-e", script, str(MARKDOWN_IT), json.dumps(snippets)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def in_code(html: str, marker: str) -> bool:
    return any(marker in code for code in re.findall(r"<code[^>]*>(.*?)</code>", html, re.DOTALL))


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_code_is_what_markdown_it_renders_as_code(index):
    snippet, html = SNIPPETS[index], markdown_it_render(SNIPPETS)[index]
    lines = list(enumerate(snippet.split("\n"), start=1))
    masked = dict(code_mask(lines))
    for number, text in lines:
        assert len(masked[number]) in (0, len(text))          # blanked, or the same columns
        for marker in MARKER.finditer(text):
            kept = masked[number][marker.start():marker.end()] == marker.group()
            assert kept == (not in_code(html, marker.group())), (snippet, marker.group(), html)


def test_images_and_links_are_those_markdown_it_renders():
    snippet = ("![one](/figures/a/b.png \"t\") and [site](https://example.org)\n"
               "> ![two][fig] and [three]\n\n"
               "`![not](/code.png)`\n\n"
               "[fig]: </figures/c/d e.png>\n[three]: ./local.md\n[unused]: /unused.png")
    html = markdown_it_render([snippet])[0]
    rendered = re.findall(r'(?:src|href)="([^"]*)"', html)
    found = links(list(enumerate(snippet.split("\n"), start=1)))
    assert [(link.kind, link.target) for link in found] == [
        ("image", "/figures/a/b.png"), ("link", "https://example.org"),
        ("image", "/figures/c/d e.png"), ("link", "./local.md")]
    assert [link.target.replace(" ", "%20") for link in found] == [
        rendered[0], rendered[1], rendered[2], rendered[3]]
    lines = snippet.split("\n")
    for link in found:                              # each points at its target as written
        assert lines[link.line - 1][link.column - 1:].startswith(link.target.split(" ")[0])


NOTES_BODIES = [
    "# T\n\n<!--\nthe notes\n-->\n",
    "# T\n\n<!-- first -->\n\ntext\n\n<!-- last -->",
    "# T\n\n<!-- not last -->\n\ntext after it\n",         # it must end the slide
    "# T\n\npara <!-- inline\nnotes -->\n",
    "# T\n\n<!-- never closed\n",
    "# T\n\n<!-- a --> <!-- b -->\n",
]


def slidev_notes(bodies: list[str]) -> list:
    """The note @slidev/parser's parseSlide finds in each slide body (null for none)."""
    parser = REPO / "talk" / "node_modules" / "@slidev" / "parser" / "dist" / "core.mjs"
    if not shutil.which("node") or not parser.exists():
        pytest.fail("needs node and talk/node_modules: run `make test` (it runs npm ci in talk/) or `make node`")
    script = ("const {parseSlide} = await import(process.argv[1]);"
              "process.stdout.write(JSON.stringify(JSON.parse(process.argv[2]).map(b => parseSlide(b).note ?? null)))")
    result = subprocess.run(["node", "--input-type=module", "-e", script, parser.as_uri(), json.dumps(bodies)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_speaker_notes_are_those_slidev_finds():
    for body, expected in zip(NOTES_BODIES, slidev_notes(NOTES_BODIES)):
        found = speaker_notes(list(enumerate(body.split("\n"), start=1)))
        assert (found.text if found else None) == expected, body


def test_a_comment_in_code_is_not_notes():
    """Here Slidev's own regular expression would take it; markdown-it renders it as code."""
    assert speaker_notes(list(enumerate("# T\n\n```\n<!-- in code -->".split("\n"), start=1))) is None
