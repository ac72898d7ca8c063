"""Read a Slidev deck as slides with line numbers, following `src:` imports.

Slidev's rules, as its parser applies them: the file may open with a headmatter block between
`---` lines; slides are separated by a line `---`; a separator directly followed by a non-blank
line opens that slide's frontmatter, which runs to the next `---`. Fenced code (``` or ~~~) is
never a separator. A slide whose frontmatter has `src: path` imports the slides of that file.

    deck = read_deck(Path("talk/slides.md"))
    for slide in deck.slides: slide.path, slide.start_line, slide.frontmatter, slide.body_lines
    for line_number, text in outside_code(slide.path_lines, ...)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")


class DeckError(ValueError):
    """A deck that cannot be read, with the file and line to fix."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Slide:
    path: Path
    start_line: int                     # 1-based line of the slide's first line (its separator)
    frontmatter: dict
    frontmatter_line: int               # line of the first frontmatter key, 0 when none
    body: list[tuple[int, str]]         # (1-based line number, text) of the content and notes


@dataclass
class Deck:
    entry: Path
    headmatter: dict
    slides: list[Slide] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)   # entry plus every imported file

    @property
    def visible_slides(self) -> list[Slide]:
        """The slides Slidev numbers and shows (hide: true / disabled: true are left out)."""
        return [s for s in self.slides if not (s.frontmatter.get("hide") or s.frontmatter.get("disabled"))]


def _parse_yaml(lines: list[str], path: Path, first_line: int) -> dict:
    try:
        data = yaml.safe_load("\n".join(lines)) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = first_line + (mark.line if mark else 0)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DeckError(path, line, f"malformed frontmatter ({problem}); fix the YAML "
                        "between the --- lines") from None
    if not isinstance(data, dict):
        raise DeckError(path, first_line, "frontmatter must be `key: value` lines, "
                        f"got {type(data).__name__}")
    return data


def _is_fence_toggle(line: str, open_fence: str | None) -> bool:
    fence = FENCE.match(line)
    if not fence:
        return False
    return open_fence is None or (fence.group(1)[0] == open_fence[0] and len(fence.group(1)) >= len(open_fence))


def _frontmatter_end(lines: list[str], separator: int) -> int | None:
    """Index of the `---` closing the frontmatter that opens after `separator`, if one does."""
    following = separator + 1
    if following >= len(lines) or not lines[following].strip():
        return None
    return next((i for i in range(following, len(lines)) if lines[i].rstrip() == "---"), None)


def split_slides(path: Path, text: str) -> tuple[dict, list[Slide]]:
    """(headmatter, slides) of one markdown file."""
    lines = text.split("\n")
    starts, index, open_fence = [0], 0, None
    if lines and lines[0].rstrip() == "---":
        index = (_frontmatter_end(lines, 0) or 0) + 1
    while index < len(lines):
        line = lines[index]
        if _is_fence_toggle(line, open_fence):
            open_fence = None if open_fence else FENCE.match(line).group(1)
        elif open_fence is None and line.rstrip() == "---":
            starts.append(index)
            index = _frontmatter_end(lines, index) or index
        index += 1
    bounds = list(zip(starts, starts[1:] + [len(lines)]))
    slides = [_read_block(path, lines, a, b) for a, b in bounds]
    headmatter = slides[0].frontmatter if lines and lines[0].rstrip() == "---" else {}
    return headmatter, slides


def _read_block(path: Path, lines: list[str], start: int, end: int) -> Slide:
    """One slide: lines[start:end], starting with its `---` separator when it has one."""
    body_start, frontmatter, fm_line = start, {}, 0
    if lines[start].rstrip() == "---":
        body_start = start + 1
        if body_start < end and lines[body_start].strip():
            close = next((i for i in range(body_start, len(lines)) if lines[i].rstrip() == "---"), None)
            if close is None:
                raise DeckError(path, start + 1, "frontmatter opened here is never closed with ---")
            frontmatter = _parse_yaml(lines[body_start:close], path, body_start + 1)
            fm_line, body_start = body_start + 1, close + 1
    body = [(i + 1, lines[i]) for i in range(body_start, min(end, len(lines)))]
    return Slide(path, start + 1, frontmatter, fm_line, body)


def read_deck(entry: Path) -> Deck:
    """The deck at `entry` with its `src:` imports expanded in place (cycles are an error)."""
    if not entry.exists():
        raise DeckError(entry, 1, "deck not found; pass DECK=path/to/slides.md (a Slidev markdown file)")
    deck = Deck(entry, {})
    _read_into(deck, entry, stack=[])
    return deck


def _read_into(deck: Deck, path: Path, stack: list[Path]) -> None:
    if path.resolve() in stack:
        raise DeckError(path, 1, f"imports itself through src: ({' -> '.join(map(str, stack))})")
    deck.files.append(path)
    headmatter, slides = split_slides(path, path.read_text(encoding="utf-8"))
    if not stack:
        deck.headmatter = headmatter
    for slide in slides:
        source = slide.frontmatter.get("src")
        if source:
            imported = (path.parent / str(source).split("#")[0]).resolve() if not str(source).startswith("/") \
                else (deck.entry.parent / str(source).lstrip("/")).resolve()
            if not imported.exists():
                raise DeckError(path, slide.frontmatter_line, f"src: {source} does not exist "
                                f"(looked for {imported})")
            _read_into(deck, imported, stack + [path.resolve()])
        else:
            deck.slides.append(slide)


def code_mask(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The lines with fenced code blanked and inline code spans replaced by spaces (columns kept)."""
    masked, in_fence = [], None
    for number, text in lines:
        fence = FENCE.match(text)
        if in_fence is not None:
            if fence and fence.group(1)[0] == in_fence[0] and len(fence.group(1)) >= len(in_fence):
                in_fence = None
            masked.append((number, ""))
        elif fence:
            in_fence = fence.group(1)
            masked.append((number, ""))
        else:
            masked.append((number, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text)))
    return masked
