"""How the built deck numbers its slides: the one rule for rehearse, deck-meta and the build.

Slidev numbers the slides it loads (decktools.markdown follows `src:` imports and their #ranges
as Slidev does, src: keys merged) and leaves out `hide:`/`disabled:` slides (Deck.visible_slides);
their citations are not in the reference list (cited_keys). prepare turns a `layout: biblio` slide
into one slide per page of the reference list (`biblio: item_per_page:` in its frontmatter or the
headmatter, default 10), so every later slide moves on by its extra pages. Rehearsal runs and the
presenter panel (talk/public/deck-meta/<deck>.json) count slides this way, and so does the build
when it writes deep links.

    works = len(cited_keys(deck, bib) & set(bib.entries))       # the works the reference list shows
    for slide in numbered_slides(deck, works): slide.number, slide.slide, slide.page
"""
from __future__ import annotations

from dataclasses import dataclass

from decktools import references
from decktools.markdown import Deck, Slide

ENTRIES_PER_PAGE = 10


@dataclass
class Numbered:
    number: int        # the slide's number in the built deck, from 1
    slide: Slide       # its source slide
    page: int          # 1, or the page of the reference list a bibliography slide becomes


def is_bibliography(slide: Slide) -> bool:
    return slide.frontmatter.get("layout") == "biblio" and not slide.frontmatter.get("src")


def entries_per_page(slide: Slide, headmatter: dict) -> int:
    for biblio in (slide.frontmatter.get("biblio"), headmatter.get("biblio")):
        if isinstance(biblio, dict) and biblio.get("item_per_page"):
            return max(1, int(biblio["item_per_page"]))
    return ENTRIES_PER_PAGE


def page_count(slide: Slide, headmatter: dict, works: int) -> int:
    """How many slides the source slide becomes: a bibliography of `works` entries its pages."""
    if not is_bibliography(slide):
        return 1
    return max(1, -(-works // entries_per_page(slide, headmatter)))


def numbered_slides(deck: Deck, works: int) -> list[Numbered]:
    """The built deck's slides, numbered as Slidev numbers them, for a reference list of `works`."""
    numbered = []
    for slide in deck.visible_slides:
        for page in range(1, page_count(slide, deck.headmatter, works) + 1):
            numbered.append(Numbered(len(numbered) + 1, slide, page))
    return numbered


def cited_keys(deck: Deck, bib) -> set[str | None]:
    """The bib keys the deck's reference list shows: those its visible slides cite (a DOI as the
    key of its entry, None when no entry has it). A citation on a hidden slide lists nothing."""
    keys = set()
    for ref in references.citations(deck.shown(), bib.entries):
        keys.update(ref.keys if ref.kind != "doi" else [bib.key_for_doi(ref.target)])
    return keys
