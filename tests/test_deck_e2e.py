"""End to end: `make slides` builds each deck for real, and headless chromium visits every slide.

The site is served by a plain static file server (no fallback to index.html), every request
outside localhost is blocked and recorded, and the tests assert that every slide renders without
overflowing its 16:9 frame, every image loads, citations render (no #RefErr) on audience and
presenter routes, the bibliography lists the cited works, and no outside request was attempted.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from decktools.check import check_deck
from decktools.markdown import read_deck
from decktools.references import citations
from tests.deckbrowser import browser_page, serve

REPO = Path(__file__).resolve().parent.parent
TALK = REPO / "talk"
PROFILE = os.environ.get("E2E_PROFILE", "quick")

pytestmark = pytest.mark.slow


def make_slides(deck: Path) -> Path:
    result = subprocess.run(["make", "slides", f"DECK={deck.relative_to(REPO)}", f"PROFILE={PROFILE}", "DEVICE=cpu"],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return TALK / ("dist" if deck.stem == "slides" else f"dist-{deck.stem}")


@pytest.fixture(scope="module")
def traps_deck():
    """The fixture deck with the known traps, built from inside talk/ like any deck."""
    deck = TALK / "e2e-traps.md"
    shutil.copy(REPO / "tests" / "fixtures" / "decks" / "traps.md", deck)
    try:
        yield deck, make_slides(deck)
    finally:
        for leftover in (deck, TALK / "e2e-traps.prepared.md", TALK / "public" / "deck-meta" / "e2e-traps.json"):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(TALK / "dist-e2e-traps", ignore_errors=True)


SLIDE_STATE = """() => {
  const layout = document.querySelector('#slide-content .slidev-layout, .slidev-page .slidev-layout');
  const images = [...document.querySelectorAll('#slide-content img, .slidev-page img')];
  const frame = layout ? layout.getBoundingClientRect() : null;
  const overflowing = !layout ? [] : [...layout.querySelectorAll('*')].filter(el => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && (r.bottom > frame.bottom + 4 || r.right > frame.right + 4);
  }).map(el => el.tagName + ':' + (el.textContent || el.getAttribute('src') || '').slice(0, 40));
  return {text: document.body.innerText,
          images: images.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
          overflowing};
}"""


def visit_every_slide(site: Path, count: int, route: str = ""):
    """Yield (number, state) for each slide, and finally the browser log."""
    states = {}
    with serve(site) as url, browser_page() as (page, log):
        for number in range(1, count + 1):
            page.goto(f"{url}/{route}{number}", wait_until="networkidle")
            page.wait_for_timeout(400)
            page.wait_for_function("() => !document.body.innerText.includes('(#Noid)')", timeout=5000)
            states[number] = page.evaluate(SLIDE_STATE)
        return states, log


def assert_deck_renders(deck: Path, site: Path):
    slides = read_deck(deck).visible_slides
    states, log = visit_every_slide(site, len(slides))
    assert log.blocked == [], f"the deck tried to reach outside hosts: {log.blocked[:5]}"
    assert log.failed == [], f"requests failed: {log.failed[:5]}"
    assert f"1 / {len(slides)}" in states[1]["text"], "Slidev counts the slides differently"
    for number, state in states.items():
        assert "#RefErr" not in state["text"], f"slide {number}: a citation did not resolve"
        broken = [image["src"] for image in state["images"] if not image["ok"]]
        assert not broken, f"slide {number}: images did not load: {broken}"
        assert not state["overflowing"], f"slide {number} overflows its frame: {state['overflowing'][:4]}"
    return states


PAGES = re.compile(r"page\s+\d+\s*/\s*(\d+)")


def bibliography_entries(site: Path, number: int) -> str:
    """All entries of the bibliography slide, through the addon's click-through pages.

    The addon learns a deck's citations as Slidev loads the other slides in the background, so
    wait until the page count and the first page stop changing before reading."""
    with serve(site) as url, browser_page() as (page, log):
        page.goto(f"{url}/{number}", wait_until="networkidle")
        read = lambda: page.evaluate("() => [...document.querySelectorAll('#slide-content .biblio_fullref')].map(e => e.innerText).join('\\n') + '\\n' + (document.querySelector('#slide-content .biblio_graphy')?.innerText || '')")
        started = time.time()
        last, stable_since, deadline = None, started, started + 90
        while time.time() < deadline and (time.time() - stable_since < 5 or time.time() - started < 10):
            page.wait_for_timeout(500)
            current = read()
            if current != last:
                last, stable_since = current, time.time()
        pages = int(PAGES.search(last).group(1)) if PAGES.search(last) else 1
        texts = [last]
        for _ in range(pages - 1):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(600)
            texts.append(read())
        assert log.blocked == []
        return "\n".join(texts)


def cited_titles(deck: Path) -> list[str]:
    from decktools.bib import load_bibliography
    bib, _ = load_bibliography(REPO / "citations.bib")
    keys = {k for ref in citations(read_deck(deck)) for k in (ref.keys or [bib.key_for_doi(ref.target)])}
    return [re.sub(r"[{}]", "", bib.entries[k]["title"]) for k in sorted(keys)]


@pytest.mark.parametrize("deck_name", ["slides.md", "workshop.md"])
def test_deck_builds_offline_and_every_slide_renders(deck_name):
    deck = TALK / deck_name
    site = make_slides(deck)
    assert check_deck(deck).problems == [], "make check must pass with no warnings"
    states = assert_deck_renders(deck, site)
    biblio_number = next((n for n, s in enumerate(read_deck(deck).visible_slides, start=1)
                          if s.frontmatter.get("layout") == "biblio"), None)
    assert biblio_number, "the deck has no bibliography slide"
    bibliography = bibliography_entries(site, biblio_number)
    letters = lambda text: re.sub(r"[^a-z0-9]", "", text.lower())  # the style may recase and typeset
    missing = [t for t in cited_titles(deck) if letters(t)[:30] not in letters(bibliography)]
    assert not missing, f"cited works missing from the bibliography: {missing[:5]}"
    manifest = json.loads((TALK / "public" / "figures" / "manifest.json").read_text())["figures"]
    shown = {m for s in states.values() for i in s["images"] if (m := re.match(r"/figures/(.+)\.\w+$", i["src"] or ""))}
    assert all(m.group(1) in manifest for m in shown), "a figure on a slide has no manifest entry"


def test_traps_citations_code_and_presenter_mode(traps_deck):
    deck, site = traps_deck
    states, log = visit_every_slide(site, 3)
    assert log.blocked == [] and log.failed == []
    assert "(Olah et al., 2017); (Elhage et al., 2022)" in states[2]["text"]     # [@a; @b]: two citations
    assert "Code keeps [@olah2020zoom] as text" in states[2]["text"]             # code is left alone
    presenter, log = visit_every_slide(site, 3, route="presenter/")
    assert log.blocked == []
    assert all("#RefErr" not in s["text"] for s in presenter.values())
    assert "(Olah et al., 2020)" in presenter[1]["text"]
    assert "Notes (Olah et al. 2020)." in presenter[2]["text"]


def test_presenter_panel_shows_pacing_and_provenance_only_to_the_presenter():
    deck = TALK / "slides.md"
    site = TALK / "dist"
    if not (site / "index.html").exists():
        site = make_slides(deck)
    meta = json.loads((TALK / "public" / "deck-meta" / "slides.json").read_text())
    with_figure = next(s for s in meta["slides"] if s["figures"])
    with serve(site) as url, browser_page() as (page, log):
        page.goto(f"{url}/{with_figure['number']}", wait_until="networkidle")
        page.wait_for_timeout(500)
        assert page.locator("[data-testid=rehearsal-panel]").count() == 0
        page.goto(f"{url}/presenter/{with_figure['number']}", wait_until="networkidle")
        panel = page.locator("[data-testid=rehearsal-panel]")
        panel.wait_for(timeout=10000)
        assert re.search(r"\d+:\d\d / \d+:\d\d", panel.inner_text())
        panel.get_by_role("button", name=re.compile("fig")).click()
        provenance = page.locator("[data-testid=provenance]").inner_text()
        figure_id = with_figure["figures"][0]
        assert figure_id in provenance and meta["figures"][figure_id]["script"] in provenance
        assert f"make figures ONLY='{figure_id}' FORCE=1" in provenance
        with page.expect_download() as download:
            panel.get_by_role("button", name="save").click()
        saved = json.loads(Path(download.value.path()).read_text())
        assert saved["deck"] == "slides" and str(with_figure["number"]) in saved["slides"]
    assert log.blocked == []


def test_pdf_export_with_debian_chromium():
    """`make pdf` exports one page per slide through Debian's chromium, citations resolved."""
    from pypdf import PdfReader
    deck = TALK / "workshop.md"
    result = subprocess.run(["make", "pdf", f"DECK={deck.relative_to(REPO)}", f"PROFILE={PROFILE}", "DEVICE=cpu"],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pages = PdfReader(TALK / "exports" / "workshop.pdf").pages
    assert len(pages) == len(read_deck(deck).visible_slides)
    from decktools.rehearse import slide_title
    second_title = slide_title(read_deck(deck).visible_slides[1])
    assert second_title.split()[0] in pages[1].extract_text()
    assert all("#RefErr" not in page.extract_text() for page in pages)
