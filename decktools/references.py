"""Find what a deck refers to: citations, assets and measured numbers, each with its position.

Code (fenced blocks and inline code spans) is ignored: a `[@key]` shown in a code sample is text.
What is code, and where markdown images and links (inline or reference-style) are, comes from
markdown-it's tokens (decktools.mdscan); citations, HTML tags and CSS url() are then matched in
the lines with code blanked.

    for ref in citations(deck): ref.keys, ref.kind ("bref" | "pandoc" | "doi"), ref.path, ref.line
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
PANDOC = re.compile(r"\[(@[^\]\[]+)\]")
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


def _pandoc_keys(inner: str) -> list[str]:
    """'@a; @b, p. 3' -> ['a', 'b'] (a locator after a comma is not part of the key)."""
    keys = []
    for item in inner.split(";"):
        item = item.strip()
        if item.startswith("@"):
            keys.append(item[1:].split(",")[0].strip())
    return keys


def citations_in_line(path: Path, number: int, text: str) -> list[Reference]:
    found = []
    for match in CITE_TAG.finditer(text):
        attributes = dict(ATTRIBUTE.findall(match.group(1)))
        column = match.start() + 1
        if "bref" in attributes:
            found.append(Reference(path, number, column, match.group(0), "bref", [attributes["bref"].strip()]))
        elif "input" in attributes:
            found.append(Reference(path, number, column, match.group(0), "doi", target=attributes["input"].strip()))
    for match in PANDOC.finditer(text):
        keys = _pandoc_keys(match.group(1))
        if keys:
            found.append(Reference(path, number, match.start() + 1, match.group(0), "pandoc", keys))
    return found


def citations(deck: Deck) -> list[Reference]:
    return [ref for slide in deck.slides for number, text in _text_lines(slide)
            for ref in citations_in_line(slide.path, number, text)]


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
                found.append(Reference(slide.path, slide.frontmatter_line or slide.start_line, 1,
                                       f"{key}: {value}", "frontmatter", target=value.strip()))
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
