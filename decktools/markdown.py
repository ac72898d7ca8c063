"""Read a Slidev deck as slides with line numbers, following `src:` imports.

Slides are cut where Slidev's own parser (@slidev/parser) cuts them: the file may open with a
headmatter block between `---` lines; a line starting with `---` ends a slide; unless it is `----`
or the next line is blank, that slide's frontmatter follows, up to the next `---` line. A closed
``` fence and an HTML comment hide separators; ~~~ fences and unclosed ``` do not. A slide whose
frontmatter has `src: path` imports the slides of that file, `src: path#2-3` only those its range
names, read as Slidev reads it (slide_range); the src: slide's other frontmatter keys are merged
onto every slide it imports, overriding theirs (`layout:`, `hide:`, `budget:`...), as Slidev's
load merges them (an outer src: slide's keys win; Slide.where names the line that set a key). A
slide with a true `hide:` or `disabled:` is never loaded by Slidev, nor printed or exported:
Deck.shown() is the deck without them. Imported files are named relative to the entry's own
path (talk/pages/part1.md beside talk/slides.md), so every message names files alike.

What is code, a link, a heading or speaker notes within a slide's body is markdown-it's to say:
see decktools.mdscan. The splitting here is not markdown: it is @slidev/parser's own line scan.

    deck = read_deck(Path("talk/slides.md"))
    for slide in deck.slides: slide.path, slide.start_line, slide.frontmatter, slide.body
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from decktools.problems import counted

TOP_LEVEL_KEY = re.compile(r"^([^\s#:'\"][^:]*?)\s*:(?:\s|$)")
# What PyYAML (YAML 1.1) reads as a bool or a base-60 number, but Slidev's `yaml` (YAML 1.2) as text
YAML_12_TEXT = {"yYnNoO": re.compile(r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$"),
                "+-0123456789": re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")}


def _yaml_12_resolvers() -> dict:
    """SafeLoader's implicit resolvers, with YAML_12_TEXT's read as text ahead of the rest (the
    first that matches wins)."""
    resolvers = {first: list(found) for first, found in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for firsts, pattern in YAML_12_TEXT.items():
        for first in firsts:
            resolvers[first].insert(0, ("tag:yaml.org,2002:str", pattern))
    return resolvers


class SlidevYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `hide: no` and `duration: 1:30` as text as Slidev does."""
    yaml_implicit_resolvers = _yaml_12_resolvers()


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
    key_lines: dict[str, int] = field(default_factory=dict)   # top-level frontmatter key -> its line
    end_line: int = 0                   # the slide's last line (1-based; the next slide starts after it)
    key_paths: dict[str, Path] = field(default_factory=dict)  # key set by an importing src: slide -> its file

    def where(self, key: str) -> tuple[Path, int]:
        """The file and line that set a frontmatter key: this slide's, or the src: slide's that
        imported it with that key (Slidev merges the src: slide's keys onto the imported ones)."""
        return self.key_paths.get(key, self.path), self.key_lines.get(key, self.frontmatter_line or self.start_line)


@dataclass
class Deck:
    entry: Path
    headmatter: dict
    slides: list[Slide] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)   # entry plus every imported file
    headmatter_lines: dict[str, int] = field(default_factory=dict)   # headmatter key -> its line

    @property
    def visible_slides(self) -> list[Slide]:
        """The slides Slidev loads, numbers and shows (hide: true / disabled: true are left out)."""
        return [s for s in self.slides if not is_hidden(s.frontmatter)]

    def shown(self) -> Deck:
        """The deck as Slidev loads it: only its visible slides, which are all that the audience,
        presenter, print route and PDF export get (a hidden slide is never loaded)."""
        return replace(self, slides=self.visible_slides)


def js_truthy(value) -> bool:
    """Whether JavaScript reads a YAML value as true, as Slidev tests `hide`: [] and {} are true."""
    if value is None or value is False or value == "":
        return False
    return not (isinstance(value, (int, float)) and (value == 0 or value != value))


def is_hidden(frontmatter: dict) -> bool:
    """Slidev's test (@slidev/parser load): a slide with a true `hide` or `disabled` is not loaded."""
    return js_truthy(frontmatter.get("hide")) or js_truthy(frontmatter.get("disabled"))


def _parse_yaml(lines: list[str], path: Path, first_line: int) -> dict:
    try:
        data = yaml.load("\n".join(lines), SlidevYamlLoader) or {}
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


def in_comment_after(line: str, in_comment: bool) -> bool:
    """Whether an HTML comment is still open at the end of `line` (`<!--` anywhere opens one)."""
    cursor = 0
    while True:
        if in_comment:
            close = line.find("-->", cursor)
            if close < 0:
                return True
            in_comment, cursor = False, close + 3
        else:
            opening = line.find("<!--", cursor)
            if opening < 0:
                return False
            in_comment, cursor = True, opening + 4


def _slidev_cuts(lines: list[str]) -> list[tuple[int, int, int]]:
    """(start, content start, end) of each slide, cut as @slidev/parser's parse() cuts them.

    A line starting with --- ends a slide. Unless it is ---- or the next line is blank, frontmatter
    follows, up to the next line that is exactly ---. A ``` line skips to the next line that starts
    with the same indent and backticks, when there is one; lines inside an HTML comment are skipped.
    ~~~ fences and unclosed ``` hide no separator. Start is 0-based; the frontmatter, when there is
    one, is lines[start + 1:content - 1]; content > len(lines) when its closing --- is missing.
    """
    cuts, start, content, index, in_comment = [], 0, 0, 0, False
    while index < len(lines):
        line = lines[index].rstrip()
        if in_comment:
            in_comment = in_comment_after(line, True)
        elif line.startswith("---"):
            if start != index:
                cuts.append((start, content, index))
                start = content = index + 1
            if line[3:4] != "-" and index + 1 < len(lines) and lines[index + 1].strip():
                start = index
                index = next((i for i in range(index + 1, len(lines)) if lines[i].rstrip() == "---"), len(lines))
                content = index + 1
        elif line.lstrip().startswith("```"):
            ticks = re.match(r"\s*`+", line).group(0)
            index = next((i for i in range(index + 1, len(lines)) if lines[i].startswith(ticks)), index)
        else:
            in_comment = in_comment_after(line, False)
        index += 1
    if start < len(lines):
        cuts.append((start, content, len(lines)))
    return cuts


def split_slides(path: Path, text: str) -> tuple[dict, list[Slide]]:
    """(headmatter, slides) of one markdown file."""
    lines = text.split("\n")
    slides = [_read_block(path, lines, *cut) for cut in _slidev_cuts(lines)]
    return (slides[0].frontmatter if slides else {}), slides


def _read_block(path: Path, lines: list[str], start: int, content: int, end: int) -> Slide:
    """One slide: its frontmatter (when content > start) and its body lines[content:end]."""
    frontmatter, fm_line, first_line, key_lines = {}, 0, start + 1, {}
    if content > start:
        if content > len(lines):
            raise DeckError(path, start + 1, "frontmatter opened here is never closed with ---")
        frontmatter = _parse_yaml(lines[start + 1:content - 1], path, start + 2)
        fm_line = start + 2
        key_lines = {match.group(1): start + 2 + offset for offset, text in enumerate(lines[start + 1:content - 1])
                     if (match := TOP_LEVEL_KEY.match(text))}
    elif start > 0 and lines[start - 1].startswith("---"):
        first_line = start            # the separator that opened this slide
    body = [(i + 1, lines[i]) for i in range(content, end)]
    return Slide(path, first_line, frontmatter, fm_line, body, key_lines, end)


def read_deck(entry: Path) -> Deck:
    """The deck at `entry` with its `src:` imports expanded in place (cycles are an error)."""
    if not entry.exists():
        raise DeckError(entry, 1, "deck not found; pass DECK=path/to/slides.md (a Slidev markdown file)")
    deck = Deck(entry, {})
    _read_into(deck, entry, stack=[])
    return deck


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")   # as read_text() reads it
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DeckError(path, line, f"not UTF-8 (byte {data[error.start]:#04x}); save the file "
                        "as UTF-8") from None


def import_path(deck: Deck, path: Path, slide: Slide) -> Path:
    """The file a slide's `src:` names: relative to its own file, or to the entry's folder with /.
    Written as the deck's own path is (relative when it is), so messages name files alike."""
    source = str(slide.frontmatter["src"])
    relative = source.split("#")[0]
    named = deck.entry.parent / relative.lstrip("/") if relative.startswith("/") else path.parent / relative
    try:
        imported = Path(os.path.normpath(named))
        found = imported.resolve().is_file()
    except (OSError, ValueError):     # a name the file system refuses (a NUL byte, too long)
        imported, found = relative, False
    if not found:
        raise DeckError(path, slide.key_lines.get("src", slide.frontmatter_line), f"src: {source} is not "
                        f"a file (looked for {imported}); fix the path")
    return imported


def slide_range(spec: str | None, total: int, name: str = "the file") -> list[int]:
    """The slides (1-based) that `src: file.md#spec` imports of a file of `total` slides, as
    @slidev/parser's parseRangeString reads spec: 2, 2-3, 1,3 (or 1;3), 2- (to the end), all, *,
    none; indexes sorted, each once. ValueError for a part that names no slide of the file (Slidev
    would leave it out without a word)."""
    spec = (spec or "").strip()
    if spec in ("", "all", "*"):
        return list(range(1, total + 1))
    if spec == "none":
        return []
    indexes = set()
    for part in re.split(r"[,;]", spec):
        start, dash, end = (item.strip() for item in part.partition("-"))
        if not start.isdecimal() or not (end.isdecimal() or not end):
            raise ValueError(f"cannot read {part.strip()!r} as slides: write e.g. #2, #2-3, #1,3 or #2-")
        last = int(end) if end else total if dash else int(start)
        if last < int(start):     # 2-1, or 3- of a 2-slide file: Slidev imports nothing for it
            raise ValueError(f"{part.strip()!r} names no slide of {name}, which has {counted(total, 'slide')} "
                             "(a range runs from its first slide to its last, counted from 1)")
        indexes.update(range(int(start), last + 1))
    outside = sorted(i for i in indexes if not 1 <= i <= total)
    if outside:
        raise ValueError(f"there is no slide {outside[0]} in {name}, which has {counted(total, 'slide')} "
                         "(counted from 1, its first slide included)")
    return sorted(indexes)


def _entries(slide: Slide) -> dict:
    """The slide's frontmatter but `src`, as key -> (value, the file and line that set it)."""
    return {key: (value, *slide.where(key)) for key, value in slide.frontmatter.items() if key != "src"}


def _merge(own: dict, override: dict) -> dict:
    """Override entries onto a slide's own, as @slidev/parser's load merges a src: slide's
    frontmatter (the outer src: slide's keys win); a key that hides the slide itself stays, since
    Slidev skips a hidden slide before any merge."""
    merged = {**own, **override}
    merged.update({key: own[key] for key in ("hide", "disabled") if key in own and js_truthy(own[key][0])})
    return merged


def _overridden(slide: Slide, override: dict) -> Slide:
    """The imported slide with its importers' keys merged onto its frontmatter (every slide a
    src: imports gets them, its #range's and its nested imports' alike)."""
    if override:
        merged = _merge(_entries(slide), override)
        slide.frontmatter = {key: value for key, (value, _, _) in merged.items()}
        slide.key_lines = {**slide.key_lines, **{key: line for key, (_, _, line) in merged.items()}}
        slide.key_paths = {key: path for key, (_, path, _) in merged.items() if path != slide.path}
    return slide


def _imported_slides(deck: Deck, path: Path, slide: Slide, stack: list[Path], override: dict) -> None:
    """The slides a `src:` slide imports, only those its #range names, its keys merged onto them."""
    imported = import_path(deck, path, slide)
    line = slide.key_lines.get("src", slide.frontmatter_line)
    _read_into(deck, imported, stack + [path.resolve()], (str(slide.frontmatter["src"]), path, line),
               _merge(_entries(slide), override))


def _read_into(deck: Deck, path: Path, stack: list[Path], selection=None, override=None) -> None:
    """Append the file's slides to the deck; `selection`: (the src: naming it, its file, line);
    `override`: the importing src: slides' keys, key -> (value, file, line)."""
    if path.resolve() in stack:
        raise DeckError(path, 1, f"imports itself through src: ({' -> '.join(map(str, stack))})")
    if path not in deck.files:
        deck.files.append(path)
    headmatter, slides = split_slides(path, _read_text(path))
    if not stack:
        deck.headmatter, deck.headmatter_lines = headmatter, (slides[0].key_lines if slides else {})
    if selection is not None:
        source, importer, line = selection
        try:
            slides = [slides[i - 1] for i in slide_range(source.partition("#")[2], len(slides), str(path))]
        except ValueError as error:
            raise DeckError(importer, line, f"src: {source}: {error}") from None
    for slide in slides:
        if slide.frontmatter.get("src"):
            _imported_slides(deck, path, slide, stack, override or {})
        else:
            deck.slides.append(_overridden(slide, override or {}))
