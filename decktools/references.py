r"""Find what a deck refers to: citations, assets and measured numbers, each with its position.

Code (fenced blocks and inline code spans) is ignored: a `[@key]` shown in a code sample is text.
What is code, and where markdown images and links (inline or reference-style) are, comes from
markdown-it's tokens (decktools.mdscan); citations, HTML tags and CSS url() are then matched in
the lines with code blanked.

    for ref in citations(deck, known=bib.entries): ref.keys, ref.kind, ref.path, ref.line

Citations, as pandoc writes them: `[@a; @b]`, with a prefix and a locator `[see @a, p. 3]`, the
author suppressed `[-@a]` (kind "pandoc", text the whole bracket, which pandoc formats itself);
`<Cite bref="a"/>` ("bref"); `<Cite input="DOI"/>` ("doi"); and narrative `@a` in running text,
`@a [p. 3]` with a locator ("narrative"). A bare `@word` is a narrative citation only where the
word is a key of `known` (the bib's) or looks like one (a name with a year: `@smith2019`), so
e-mail addresses, `@slidev/cli`, `@click="..."` and handles stay text; `\@a` is always text.
    for ref in assets(deck): ref.target, ref.remote
    for ref in measured(deck): ref.attributes["fig"], ref.attributes["value"]
    for ref, figure_id in figures(deck): ...   # images under /figures/ and <Measured fig=...>
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from decktools import mdscan
from decktools.markdown import Deck, Slide

CITE_TAG = re.compile(r"<Cite\b([^>]*?)/?>", re.IGNORECASE)
# pandoc's citation key: @{anything} or a word with internal punctuation (a trailing "." is text)
KEY = r"@(?:\{([^{}]+)\}|(\w(?:[\w:.#$%&+?<>~/-]*\w)?))"
ITEM_KEY = re.compile(r"(?<![\w@\\])" + KEY)          # "me@x.org" is no key; "-@a" and "see @a" are
PANDOC = re.compile(r"\[([^\]\[]*@[^\]\[]*)\]")
# @key in running text, not an attribute (@click="...", :x="@y") nor a call, with an optional [locator]
NARRATIVE = re.compile(r"(?<![\w@.:/\\\[-])@(?![\w:.#$%&+?<>~/-]*[=(])" + KEY[1:] + r"(?: \[[^\]\[@]*\])?")
LOOKS_CITED = re.compile(r"^[^\W\d][\w:.#$%&+?<>~/-]*?(?<!\d)(1[5-9]|20)\d\d(?!\d)")
# An HTML attribute's value in "double" or 'single' quotes. Two groups, name and value, so
# dict(ATTRIBUTE.findall(tag)) reads a tag: the value's lookbehind and lookahead see its quotes.
QUOTED = r"[\"']((?<=\")[^\"]*(?=\")|(?<=')[^']*(?='))[\"']"
ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*" + QUOTED)
HTML_SOURCE = re.compile(r"\b(src|poster|data|srcset)\s*=\s*" + QUOTED, re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
MEASURED = re.compile(r"<Measured\b([^>]*?)/?>")
ASSET_FRONTMATTER_KEYS = ("background", "image", "favicon")
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
FIGURE_PATH = re.compile(r"^/?figures/([\w.-]+)/([\w.-]+)\.\w+$")


@dataclass
class Reference:
    path: Path
    line: int
    column: int
    text: str                                  # the whole matched text, as written
    kind: str                                  # bref | pandoc | doi | image | link | frontmatter | measured
    keys: list[str] = field(default_factory=list)
    target: str = ""                           # asset path or URL, DOI
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return bool(REMOTE.match(self.target))


def _text_lines(slide: Slide):
    return mdscan.code_mask(slide.body)


def pandoc_keys(inner: str) -> list[str]:
    """'see @a, p. 3; @b' -> ['a', 'b']: each item's key (prefixes and locators are not part of it)."""
    return [next(filter(None, match.groups())) for item in inner.split(";")
            if (match := ITEM_KEY.search(item))]


def narrative_citations(path: Path, number: int, text: str, known) -> list[Reference]:
    """`@key` (and `@key [p. 3]`) outside brackets, where the key is known or looks like one."""
    found = []
    for match in NARRATIVE.finditer(PANDOC.sub(lambda m: " " * len(m.group(0)), text)):
        key = next(filter(None, match.groups()))
        if key in known or LOOKS_CITED.match(key):
            found.append(Reference(path, number, match.start() + 1, match.group(0), "narrative", [key]))
    return found


def citations_in_line(path: Path, number: int, text: str, known=()) -> list[Reference]:
    found = []
    for match in CITE_TAG.finditer(text):
        attributes = dict(ATTRIBUTE.findall(match.group(1)))
        column = match.start() + 1
        if "bref" in attributes:
            found.append(Reference(path, number, column, match.group(0), "bref", [attributes["bref"].strip()]))
        elif "input" in attributes:
            found.append(Reference(path, number, column, match.group(0), "doi", target=attributes["input"].strip()))
    for match in PANDOC.finditer(text):
        keys = pandoc_keys(match.group(1))
        if keys:
            found.append(Reference(path, number, match.start() + 1, match.group(0), "pandoc", keys))
    return sorted(found + narrative_citations(path, number, text, known), key=lambda ref: ref.column)


def citations(deck: Deck, known=()) -> list[Reference]:
    """Every citation of the deck; known: the bib's keys, for narrative `@key` (see the docstring)."""
    return [ref for slide in deck.slides for number, text in _text_lines(slide)
            for ref in citations_in_line(slide.path, number, text, known)]


def html_assets_in_line(path: Path, number: int, text: str) -> list[Reference]:
    """Assets an HTML attribute or a CSS url() names in one line (code already blanked)."""
    found = [Reference(path, number, m.start(2) + 1, m.group(0), "image", target=m.group(2))
              for m in HTML_SOURCE.finditer(text) if not m.group(2).startswith(("{", "data:"))]
    found += [Reference(path, number, m.start(1) + 1, m.group(0), "image", target=m.group(1))
              for m in CSS_URL.finditer(text) if not m.group(1).startswith("data:")]
    return found


def markdown_assets(slide: Slide) -> list[Reference]:
    """Markdown images and links, inline or by reference (placed at the definition's target)."""
    return [Reference(slide.path, link.line, link.column, link.text, link.kind, target=link.target)
            for link in mdscan.links(slide.body)]


def assets(deck: Deck) -> list[Reference]:
    found = []
    for slide in deck.slides:
        for key in ASSET_FRONTMATTER_KEYS:
            value = slide.frontmatter.get(key)
            if isinstance(value, str) and value.strip() and not value.strip().startswith(("#", "linear-gradient")):
                found.append(Reference(*slide.where(key), 1, f"{key}: {value}", "frontmatter",
                                       target=value.strip()))
        in_body = markdown_assets(slide) + [ref for number, text in _text_lines(slide)
                                            for ref in html_assets_in_line(slide.path, number, text)]
        found += sorted(in_body, key=lambda ref: (ref.line, ref.column))
    return found


def measured(deck: Deck) -> list[Reference]:
    return [Reference(slide.path, number, m.start() + 1, m.group(0), "measured",
                      attributes=dict(ATTRIBUTE.findall(m.group(1))))
            for slide in deck.slides for number, text in _text_lines(slide)
            for m in MEASURED.finditer(text)]


def figure_id_of(target: str) -> str | None:
    """'family/name' for an asset path /figures/family/name.ext, else None."""
    match = FIGURE_PATH.match(target.split("#")[0].split("?")[0])
    return f"{match.group(1)}/{match.group(2)}" if match else None


def figures(deck: Deck) -> list[tuple[Reference, str]]:
    """Every place the deck shows a generated figure, with its id: an image (or any asset) under
    /figures/, and a <Measured fig=...>, whose number comes from that figure."""
    found = [(ref, figure_id_of(ref.target)) for ref in assets(deck)]
    found += [(ref, ref.attributes.get("fig")) for ref in measured(deck)]
    return [(ref, figure_id) for ref, figure_id in found if figure_id]
