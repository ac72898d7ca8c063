"""Edits made in Slidev's browser carried back into the deck's own files, for `make dev`.

Slidev serves the prepared copies (decktools.prepare writes talk/x.prepared.md from talk/x.md), so
the presenter view's "Edit Notes" and Slidev's side editor save into a copy that the next
re-preparation overwrites. The dev loop remembers what it prepared and, when a copy changes under
it, calls carry_back: each slide whose notes or content the browser changed gets the same change
in its source file. Lines the edit kept keep their source text (a citation the copy shows as
"(Olah et al., 2020)" stays @olah2020 in the source); changed and added lines are taken as typed.
What cannot be mapped back (a frontmatter edit, a slide added or removed, an edit on a reference
list's generated page) is named for the speaker to make in the source.

    carried = carry_back(prepared_path, generated_text, source_path, source_text)
    carried.changed     # ["talk/x.md:12", ...] the source slides that were updated
    carried.refused     # one message per edit left in the browser only
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from decktools.markdown import DeckError, Slide, split_slides
from decktools.mdscan import speaker_notes
from decktools.numbering import is_bibliography
from figures_src.runner import write_atomic


@dataclass
class Carried:
    changed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def edited_lines(old: list[str], new: list[str], source: list[str]) -> list[str]:
    """`source` (line for line what `old` was rewritten from) with the edit old -> new applied:
    lines the edit kept are the source's, lines it changed or added are new's."""
    result = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        result += source[i1:i2] if tag == "equal" else new[j1:j2]
    return result


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


def edited_body(old: Slide, new: Slide, source: Slide) -> list[str] | None:
    """The source slide's new body lines, or None when the browser left this slide as it was."""
    old_lines, new_lines, source_lines = texts(old), texts(new), texts(source)
    (o1, o2), (n1, n2), (s1, s2) = core(old_lines), core(new_lines), core(source_lines)
    if old_lines[o1:o2] == new_lines[n1:n2]:
        return None
    middle = edited_lines(old_lines[o1:o2], new_lines[n1:n2], source_lines[s1:s2])
    return source_lines[:s1] + middle + source_lines[s2:]


def note_block(slide: Slide) -> list[str]:
    """The lines of the slide's speaker notes comment, <!-- to --> ([] when it has none)."""
    notes = speaker_notes(slide.body)
    return [text for number, text in slide.body if notes and number in notes]


def edited_bibliography(old: Slide, new: Slide, source: Slide, where: str, carried: Carried) -> list[str] | None:
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
    return body[:first] + edited_lines(note_block(old), note_block(new), source_notes) + \
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
            carried.refused.append(f"{where}: a frontmatter edit in the browser is not kept: edit the source")
        if texts(old_slide) == texts(new_slide):
            continue
        if is_bibliography(source_slide):
            body = edited_bibliography(old_slide, new_slide, source_slide, where, carried)
        elif len(old_slide.body) == len(source_slide.body):
            body = edited_body(old_slide, new_slide, source_slide)
        else:
            body = None
            carried.refused.append(f"{where}: this slide's copy does not match its source line for line; "
                                   "the browser's edit is not kept: edit the source")
        if body is not None:
            first = source_slide.end_line - len(source_slide.body)
            lines[first:source_slide.end_line] = body
            carried.changed.append(where)
    if carried.changed:
        write_atomic(source_path, "\n".join(lines))
    carried.changed.reverse()
    return carried
