"""What markdown-it sees in a slide: its code, its images and links, its title, its speaker notes.

A slide's body is parsed with markdown-it-py (CommonMark with HTML, tables and strikethrough, as
Slidev's markdown-it renders it). Tokens carry line maps but no columns, so the inline rules that
matter (code spans, links, images, inline HTML) are wrapped to record where in their paragraph they
start and end; positions are then mapped back to the slide's own lines and columns. An HTML
comment is markdown of its own (Slidev renders the notes as markdown), so its inside is parsed
again: a fence left open there ends with the comment.

    for number, text in code_mask(slide.body): ...    # code blanked, columns kept
    for number, column, marker in unclosed_fences(slide.body): ...   # a ``` never closed
    for link in links(slide.body): link.line, link.column, link.kind, link.target
    notes = speaker_notes(slide.body)                   # Slidev's: the comment that ends the slide
    heading = first_heading(slide.body)                 # the first # heading outside code

Reference-style links and images (`![alt][ref]` with `[ref]: /figures/x.png`) are reported where
their definition names the target, once per definition. references (check), prepare, rehearse and
deckmeta all read slides through this module, so they agree on what is code and what are notes.
Frontmatter never reaches it: decktools.markdown cuts slides and their frontmatter as
@slidev/parser does, which is not markdown (no front-matter plugin here).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference
from markdown_it.helpers import parseLinkDestination
from markdown_it import rules_inline
from markdown_it.rules_inline import StateInline

COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
REFERENCE_LABEL = re.compile(r"\[((?:\\.|[^\\\[\]])*)\]")
DEFINITION = re.compile(r"\[((?:\\.|[^\\\]])+)\]:[ \t]*\n?[ \t]*(<[^>\n]*>|\S+)")
# inline rule name -> (its function, the token it makes, where its [text] starts: None if none)
RECORDED = {"backticks": (rules_inline.backtick, "code_inline", None),
            "link": (rules_inline.link, "link_open", 0), "image": (rules_inline.image, "image", 1),
            "html_inline": (rules_inline.html_inline, "html_inline", None)}


def _recording(rule, token_type: str, label_from: int | None):
    """The inline rule, also noting in its token's meta the span of content it consumed (and, for
    links and images, where their [text] ends, found as the rule itself finds it)."""
    def wrapped(state: StateInline, silent: bool) -> bool:
        start, count = state.pos, len(state.tokens)
        label_end = None
        if label_from is not None and state.src[start] in "![":
            label_end = state.md.helpers.parseLinkLabel(state, start + label_from, token_type == "link_open")
        if not rule(state, silent):
            return False
        token = next((t for t in state.tokens[count:] if t.type == token_type), None)
        if token is not None and not silent:
            token.meta = {**(token.meta or {}), "span": (start, state.pos), "label_end": label_end}
        return True
    return wrapped


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"inline_definitions": True}).enable(["table", "strikethrough"])
    for name, (rule, token_type, label_from) in RECORDED.items():
        md.inline.ruler.at(name, _recording(rule, token_type, label_from))
    return md


@dataclass
class Link:
    line: int                   # index into the scanned lines
    column: int                 # 0-based column of the target as written
    kind: str                   # image | link
    target: str                 # as written (unescaped, not percent-encoded)
    text: str                   # the whole link as written, or its definition line


@dataclass
class Scan:
    masked: list[str]
    links: list[Link]
    comments: list[tuple[int, int, int, int]]     # (line, column, end line, end column) of each comment
    open_fences: list[tuple[int, int, str]] = field(default_factory=list)   # (line, column, marker) unclosed


def _fence_closed(token, texts: list[str]) -> bool:
    """Whether a fence token ends on a closing marker line (markdown-it runs an unclosed one to the
    end of what it parses): the marker's character, at least as many, nothing else but > and space."""
    first, last = token.map[0], token.map[1] - 1
    closing = re.sub(r"^[\s>]*", "", texts[last]).rstrip() if last > first else ""
    return bool(closing) and set(closing) == {token.markup[0]} and len(closing) >= len(token.markup)


def _inline_columns(content: str, sources: list[str]) -> list[int]:
    """For each line of an inline token's content, the column where it sits in its source line."""
    offsets = []
    for text, source in zip(content.split("\n"), sources):
        stripped = text.lstrip()
        found = source.find(stripped) if stripped else 0
        offsets.append(max(found, 0) - (len(text) - len(stripped)))
    return offsets


def _position(content: str, offsets: list[int], first_line: int, index: int) -> tuple[int, int]:
    line = content.count("\n", 0, index)
    column = index - (content.rfind("\n", 0, index) + 1)
    return first_line + line, offsets[line] + column


def _blank(masked: list[str], start: tuple[int, int], end: tuple[int, int]) -> None:
    """Replace the text from start to end (line, column) with spaces, keeping every column."""
    for line in range(start[0], end[0] + 1):
        left = start[1] if line == start[0] else 0
        right = end[1] if line == end[0] else len(masked[line])
        masked[line] = masked[line][:left] + " " * (right - left) + masked[line][right:]


def _note_link(content: str, token, offsets: list[int], first: int, scan: Scan, used: dict) -> None:
    """An inline link or image goes into scan.links at its target; a reference-style one marks
    its definition as used (by an image, or by links only)."""
    start, end = token.meta["span"]
    label_end, kind = token.meta["label_end"], "image" if token.type == "image" else "link"
    if content.startswith("(", label_end + 1):
        position = label_end + 2
        while content[position] in " \t\n":
            position += 1
        target = parseLinkDestination(content, position, end).str
        line, column = _position(content, offsets, first, position + content.startswith("<", position))
        scan.links.append(Link(line, column, kind, target, content[start:end]))
        return
    label = content[start + 1 + (kind == "image"):label_end]
    second = REFERENCE_LABEL.match(content, label_end + 1)      # [text][label]; [text][] uses the text
    if second and second.end() <= end:
        label = second.group(1) or label
    key = normalizeReference(label)
    used[key] = "image" if kind == "image" else used.get(key, "link")


def _scan_inline(token, texts: list[str], scan: Scan, used: dict[str, str]) -> None:
    """Blank a paragraph's code spans; note its comments, links and images."""
    first, last = token.map
    content = token.content
    offsets = _inline_columns(content, texts[first:last])
    for child in token.children or []:
        if not (child.meta and "span" in child.meta):
            continue
        start, end = child.meta["span"]
        where = _position(content, offsets, first, start), _position(content, offsets, first, end)
        if child.type == "code_inline":
            _blank(scan.masked, *where)
        elif child.type == "html_inline" and child.content.startswith("<!--"):
            scan.comments.append((*where[0], *where[1]))
        elif child.type in ("image", "link_open"):
            _note_link(content, child, offsets, first, scan, used)


def _definition_links(env: dict, texts: list[str], used: dict[str, str]) -> list[Link]:
    """One Link per reference definition that a link or image uses, at its target."""
    found = []
    for key, definition in env.get("references", {}).items():
        if key not in used:
            continue
        first, last = definition["map"]
        block = "\n".join(texts[first:last])
        match = DEFINITION.search(block)
        if match:
            raw = match.group(2)
            index = match.start(2) + raw.startswith("<")
            line = block.count("\n", 0, index)
            column = index - (block.rfind("\n", 0, index) + 1)
            target = parseLinkDestination(raw, 0, len(raw)).str if raw.startswith("<") else raw
            found.append(Link(first + line, column, used[key], target, texts[first].strip()))
    return found


def _scan_comment(token, texts: list[str], scan: Scan) -> None:
    """An HTML comment block: record it, and scan its inside as markdown of its own."""
    first, last = token.map
    opening = texts[first].find("<!--")
    inside = [texts[first][opening + 4:]] + texts[first + 1:last]
    closing = next((i for i, text in enumerate(inside) if "-->" in text), None)
    if closing is not None:
        inside = inside[:closing + 1]
        inside[closing] = inside[closing][:inside[closing].find("-->")]
    inner = scan_lines(inside)

    def shift(line: int, column: int) -> tuple[int, int]:     # inside the comment -> in texts
        return first + line, column + (opening + 4 if line == 0 else 0)

    for index, (text, original) in enumerate(zip(inner.masked, inside)):
        line, column = shift(index, 0)
        masked = scan.masked[line]
        scan.masked[line] = masked[:column] + text.ljust(len(original)) + masked[column + len(original):]
    for link in inner.links:
        link.line, link.column = shift(link.line, link.column)
        scan.links.append(link)
    end = shift(len(inside) - 1, len(inside[-1]) + 3) if closing is not None else (last - 1, len(texts[last - 1]))
    scan.comments.append((first, opening, *end))
    # the rest of the closing line is raw HTML: `<!-- a --> <!-- b -->` holds two comments
    scan.comments += [(end[0], m.start(), end[0], m.end()) for m in COMMENT.finditer(texts[end[0]], end[1])]


def scan_lines(texts: list[str]) -> Scan:
    """Code, links and comments of markdown lines (a slide's body, or a comment's inside)."""
    env: dict = {}
    tokens = parser().parse("\n".join(texts), env)
    scan, used = Scan(list(texts), [], []), {}
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            for line in range(*token.map):
                scan.masked[line] = ""
            if token.type == "fence" and not _fence_closed(token, texts):
                scan.open_fences.append((token.map[0], texts[token.map[0]].find(token.markup), token.markup))
        elif token.type == "html_block" and token.content.lstrip().startswith("<!--"):
            _scan_comment(token, texts, scan)
        elif token.type == "inline" and token.map:
            _scan_inline(token, texts, scan, used)
    scan.links += _definition_links(env, texts, used)
    return scan


@lru_cache(maxsize=512)
def _scan_body(texts: tuple[str, ...]) -> Scan:
    return scan_lines(list(texts))


def _scan(lines: list[tuple[int, str]]) -> Scan:
    return _scan_body(tuple(text for _, text in lines))


def code_mask(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The (number, text) lines with fenced and indented code blanked and inline code spans
    replaced by spaces, so every other column stays where it was."""
    return [(number, masked) for (number, _), masked in zip(lines, _scan(lines).masked)]


def links(lines: list[tuple[int, str]]) -> list[Link]:
    """The images and links of (number, text) lines, line numbered as given, column 1-based."""
    numbers = [number for number, _ in lines]
    return [Link(numbers[link.line], link.column + 1, link.kind, link.target, link.text)
            for link in _scan(lines).links]


def unclosed_fences(lines: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(line number, 1-based column, marker) of each code fence of the lines that is never closed."""
    return [(lines[line][0], column + 1, marker) for line, column, marker in _scan(lines).open_fences]


@dataclass
class Notes:
    text: str                    # what presenter mode shows, stripped
    first_line: int              # the lines of the comment, <!-- to -->
    last_line: int

    def __contains__(self, number: int) -> bool:
        return self.first_line <= number <= self.last_line


def speaker_notes(body: list[tuple[int, str]]) -> Notes | None:
    """Slidev's speaker notes: the slide's last HTML comment, when nothing but space follows it.
    A comment inside code is code, not notes."""
    comments = _scan(body).comments
    if not comments:
        return None
    line, column, end_line, end_column = max(comments, key=lambda c: (c[2], c[3]))
    texts = [text for _, text in body]
    after = "\n".join([texts[end_line][end_column:]] + texts[end_line + 1:])
    span = texts[line:end_line + 1]
    span[-1] = span[-1][:end_column]
    span[0] = span[0][column:]
    comment = COMMENT.fullmatch("\n".join(span))
    if after.strip() or comment is None:
        return None
    return Notes(comment.group(1).strip(), body[line][0], body[end_line][0])


def first_heading(body: list[tuple[int, str]]) -> str:
    """The text of the slide's first # heading outside code and comments, as written; else ''."""
    tokens = parser().parse("\n".join(text for _, text in body), {})
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open" and opening.markup.startswith("#"):
            return inline.content
    return ""
