"""Edits made in Slidev's browser carried back into the deck's own files, for `make dev`.

Slidev serves the prepared copies (decktools.prepare writes talk/x.prepared.md from talk/x.md), so
the presenter view's "Edit Notes" and Slidev's side editor save into a copy that the next
re-preparation overwrites. The dev loop remembers what it prepared and, when a copy changes under
it, calls carry_back: each slide whose notes or content the browser changed gets the same change
in its source file. Lines the edit kept keep their source text (a citation the copy shows as
"(Olah et al., 2020)" stays @olah2020 in the source); in a changed line, what the copy shows of a
citation or a <Measured> number is written back as its source too, the rest as typed (an edit
inside the shown markup itself is not kept, and named); added lines are taken as typed.
What cannot be mapped back (a frontmatter edit, a slide added or removed, an edit on a reference
list's generated page) is named for the speaker to make in the source.

    carried = carry_back(prepared_path, generated_text, source_path, source_text)
    carried.changed     # ["talk/x.md:12", ...] the first line edited of each source slide updated
    carried.refused     # one message per edit left in the browser only
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from decktools.markdown import DeckError, Slide, split_slides
from decktools.mdscan import speaker_notes
from decktools.numbering import is_bibliography
from figures_src.runner import write_atomic


# what decktools.prepare writes for a citation and a <Measured> number: never source text
GENERATED = re.compile(r'<span class="(citation|measured)"')


@dataclass
class Carried:
    changed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def edited_lines(old: list[str], new: list[str], source: list[str], lost: list[str]) -> list[str]:
    """`source` (line for line what `old` was rewritten from) with the edit old -> new applied:
    lines the edit kept are the source's; a line it changed is merged (merged_line), so what the
    browser showed of a citation or a <Measured> number it left alone is written as in the source.
    A line whose shown citation or number the edit itself changed is taken as typed, unless it
    still holds the generated markup: then it stays the source's, its browser text added to
    `lost`. Lines it added are new's."""
    result = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            result += source[i1:i2]
        elif tag == "replace" and i2 - i1 == j2 - j1:      # lines edited in place
            for k in range(i2 - i1):
                merged = merged_line(source[i1 + k], old[i1 + k], new[j1 + k])
                if merged is None and GENERATED.search(new[j1 + k]):   # the shown markup, edited
                    lost.append(new[j1 + k])
                    merged = source[i1 + k]
                result.append(new[j1 + k] if merged is None else merged)     # rewritten: as typed
        else:
            result += new[j1:j2]
    return result


def merged_line(source: str, old: str, new: str) -> str | None:
    """The source line with the browser's edit old -> new applied. `old` is the line as prepared
    from `source` (a citation shown as "(Olah et al., 2020)", a number as a span): each stretch of
    `old` that differs from the source is written back as the source has it. None when the
    browser changed such a stretch itself: what it shows is made from the source, not typed."""
    positions = Positions(SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes(), len(new))
    result, start = [], 0
    regions = SequenceMatcher(a=old, b=source, autojunk=False).get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(regions):
        plain = tag == "equal"
        end = len(new) if index == len(regions) - 1 else (positions.after(i2) if plain else positions.before(i2))
        shown = new[start:end]                  # the browser's text for old[i1:i2], with its insertions
        if not plain and shown != old[i1:i2]:
            return None
        result.append(shown if plain else source[j1:j2])
        start = end
    return "".join(result)


class Positions:
    """Where a position in the old line falls in the new one: before() and after() the text the
    edit inserted there."""

    def __init__(self, opcodes, new_length: int):
        self.opcodes, self.new_length = opcodes, new_length

    def before(self, position: int) -> int:
        for tag, i1, i2, j1, j2 in self.opcodes:
            if i1 <= position < i2 or (i1 == i2 == position):
                return j1 + (position - i1 if tag == "equal" else 0)
        return self.new_length

    def after(self, position: int) -> int:
        for tag, i1, i2, j1, j2 in reversed(self.opcodes):
            if i1 < position <= i2 or (i1 == i2 == position):
                return j1 + (position - i1 if tag == "equal" else j2 - j1)
        return 0


def core(lines: list[str]) -> tuple[int, int]:
    """[start, end) of `lines` without blank lines at either end (Slidev's save trims them)."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def texts(slide: Slide) -> list[str]:
    return [text for _, text in slide.body]


def edited_body(old: Slide, new: Slide, source: Slide, lost: list[str]) -> list[str] | None:
    """The source slide's new body lines, or None when the browser left this slide as it was."""
    old_lines, new_lines, source_lines = texts(old), texts(new), texts(source)
    (o1, o2), (n1, n2), (s1, s2) = core(old_lines), core(new_lines), core(source_lines)
    if old_lines[o1:o2] == new_lines[n1:n2]:
        return None
    middle = edited_lines(old_lines[o1:o2], new_lines[n1:n2], source_lines[s1:s2], lost)
    return source_lines[:s1] + middle + source_lines[s2:]


def note_block(slide: Slide) -> list[str]:
    """The lines of the slide's speaker notes comment, <!-- to --> ([] when it has none)."""
    notes = speaker_notes(slide.body)
    return [text for number, text in slide.body if notes and number in notes]


def edited_bibliography(old: Slide, new: Slide, source: Slide, where: str, carried: Carried,
                        lost: list[str]) -> list[str] | None:
    """A reference-list slide's copy adds the rendered list to its content: only its notes map
    back, line for line; a content edit is refused."""
    if note_block(old) == note_block(new):
        if texts(old) != texts(new):
            carried.refused.append(f"{where}: the reference list is made from the bibliography; an edit "
                                   "of this slide's content in the browser is not kept: edit the source")
        return None
    source_notes = note_block(source)
    notes = speaker_notes(source.body)
    body = texts(source)
    if notes is None:
        return body + [""] + note_block(new)
    first = notes.first_line - source.body[0][0]
    return body[:first] + edited_lines(note_block(old), note_block(new), source_notes, lost) + \
        body[first + len(source_notes):]


def slide_pairs(old: list[Slide], source: list[Slide]) -> list[tuple[int, Slide]] | None:
    """(index of the prepared slide, its source slide) for every prepared slide that has one. A
    reference list becomes one slide per page in the copy; its further pages follow its first and
    have no source. None when that cannot be told (several reference lists in one file, paged)."""
    extra = len(old) - len(source)
    lists = [i for i, slide in enumerate(source) if is_bibliography(slide)]
    if extra < 0 or (extra and len(lists) != 1):
        return None
    pairs, index = [], 0
    for i, slide in enumerate(source):
        pairs.append((index, slide))
        index += 1 + (extra if lists and i == lists[0] else 0)
    return pairs


def carry_back(prepared: Path, generated: str, source_path: Path, source_text: str) -> Carried:
    """Apply the browser's edits of `prepared` (which the dev loop wrote as `generated`, from
    `source_text`) to `source_path`, written atomically; return what was carried and refused."""
    carried = Carried()
    try:
        _, old = split_slides(prepared, generated)
        _, new = split_slides(prepared, prepared.read_text(encoding="utf-8"))
        _, source = split_slides(source_path, source_text)
    except DeckError as error:
        carried.refused.append(f"{prepared}: the browser's save could not be read ({error}); edit {source_path}")
        return carried
    pairs = slide_pairs(old, source)
    if pairs is None or len(new) != len(old):
        carried.refused.append(f"{source_path}: the browser added or removed slides; that is not kept: "
                               f"make the change in {source_path}")
        return carried
    paired = {index for index, _ in pairs}
    if any(texts(old[i]) != texts(new[i]) for i in range(len(old)) if i not in paired):
        carried.refused.append(f"{source_path}: a later page of the reference list is made from the "
                               "bibliography; an edit of it in the browser is not kept")
    lines = source_text.split("\n")
    for index, source_slide in reversed(pairs):           # last first, so earlier lines stay put
        old_slide, new_slide = old[index], new[index]
        where = f"{source_path}:{source_slide.start_line}"
        if old_slide.frontmatter != new_slide.frontmatter:
            keys = sorted(key for key in {**old_slide.frontmatter, **new_slide.frontmatter}
                          if old_slide.frontmatter.get(key) != new_slide.frontmatter.get(key))
            carried.refused.append(f"{where}: a frontmatter edit in the browser ({', '.join(keys)}) is not kept: "
                                   "edit the source")
        if texts(old_slide) == texts(new_slide):
            continue
        lost: list[str] = []          # lines whose shown citation or number the browser edited
        if is_bibliography(source_slide):
            body = edited_bibliography(old_slide, new_slide, source_slide, where, carried, lost)
        elif len(old_slide.body) == len(source_slide.body):
            body = edited_body(old_slide, new_slide, source_slide, lost)
        else:
            body = None
            carried.refused.append(f"{where}: this slide's copy does not match its source line for line; "
                                   "the browser's edit is not kept: edit the source")
        if body is not None and any(GENERATED.search(line) for line in body):     # lines added or split
            carried.refused.append(f"{where}: the browser's edit would write a citation or a <Measured> number "
                                   "into the source as the slide shows it; it is not kept: edit the source")
            body = None
        for line in lost:
            carried.refused.append(f"{where}: the browser changed a citation or a <Measured> number as the slide "
                                   f"shows it (\"{line.strip()[:80]}\"); that line is kept as in the source: "
                                   "edit its @key or <Measured> there")
        if body is not None and body != texts(source_slide):
            first = source_slide.end_line - len(source_slide.body)
            edited = next((k for k, (a, b) in enumerate(zip(body, texts(source_slide))) if a != b),
                          min(len(body), len(source_slide.body)))
            lines[first:source_slide.end_line] = body
            carried.changed.append(f"{source_path}:{first + edited + 1}")     # the first line edited
    if carried.changed:
        write_atomic(source_path, "\n".join(lines))
    carried.changed.reverse()
    return carried
