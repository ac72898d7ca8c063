"""`make dev`: edits made in the browser reach the deck's own files (decktools.carryback).

The unit tests prepare a real deck (decktools.prepare) and edit its prepared copy as Slidev's save
does; the end-to-end test runs `python -m decktools.dev` (the real Slidev dev server), opens the
presenter view in headless chromium, clicks "Edit Notes" and types, and reads the source file.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from decktools.carryback import carry_back
from decktools.markdown import split_slides
from decktools.prepare import prepare_deck, prepared_name
from tests.test_build import touch, write_talk

REPO = Path(__file__).resolve().parent.parent
BIB = """@article{olah2020zoom,
  author = {Olah, Chris and Cammarata, Nick},
  title = {Zoom In: An Introduction to Circuits},
  journal = {Distill},
  year = {2020}
}
"""
CITED_NOTES = "\n\nSee @olah2020zoom for the circuits.\n"
REFERENCES = "\n---\nlayout: biblio\nbiblio:\n  item_per_page: 1\n---\n\n# References\n\n<!--\nNOTE-REFS\n-->\n"


def cited_talk(tmp_path: Path) -> Path:
    """write_talk's lecture with a bib, a citation in slide 1's notes and a reference list."""
    deck = write_talk(tmp_path, head_extra="\nbiblio:\n  filename: refs.bib")
    shutil.copytree(REPO / "talk" / "layouts", deck.parent / "layouts")      # the biblio layout
    (deck.parent / "refs.bib").write_text(BIB)
    text = deck.read_text().replace("NOTE-ONE", "NOTE-ONE" + CITED_NOTES.rstrip("\n"))
    deck.write_text(text + REFERENCES)
    return deck


def browser_save(copy: Path, old: str, new: str) -> None:
    """Slidev's save: the whole copy rewritten, with the edit in it."""
    text = copy.read_text()
    assert old in text
    copy.write_text(text.replace(old, new, 1))


def prepared(deck: Path) -> tuple[Path, str, str]:
    prepare_deck(deck)
    copy = prepared_name(deck)
    return copy, copy.read_text(), deck.read_text()


def test_a_note_edit_is_saved_into_the_source_and_a_rendered_citation_stays_a_key(tmp_path):
    deck = cited_talk(tmp_path)
    copy, generated, source = prepared(deck)
    assert "See Olah & Cammarata (2020) for" in generated
    browser_save(copy, "NOTE-ONE\n", "NOTE-ONE\nSay this slowly.\n")
    carried = carry_back(copy, generated, deck, source)
    added = source.split("\n").index("NOTE-ONE") + 2            # the line the browser added, 1-based
    assert carried.changed == [f"{deck}:{added}"] and carried.refused == []
    text = deck.read_text()
    assert "NOTE-ONE\nSay this slowly.\n\nSee @olah2020zoom for the circuits.\n-->" in text
    assert text.replace("Say this slowly.\n", "") == source          # nothing else moved


def test_an_edited_line_with_a_citation_is_taken_as_typed_and_other_slides_are_untouched(tmp_path):
    deck = cited_talk(tmp_path)
    copy, generated, source = prepared(deck)
    browser_save(copy, "See Olah & Cammarata (2020) for the circuits.", "See Olah's essay.")
    carry_back(copy, generated, deck, source)
    assert deck.read_text() == source.replace("See @olah2020zoom for the circuits.", "See Olah's essay.")


def test_a_note_on_the_reference_list_is_carried_past_its_generated_pages_and_content_is_refused(tmp_path):
    deck = cited_talk(tmp_path)
    (deck.parent / "refs.bib").write_text(BIB + BIB.replace("olah2020zoom", "second").replace("Zoom In", "Two"))
    deck.write_text(deck.read_text().replace("for the circuits.", "for the circuits and @second."))
    copy, generated, source = prepared(deck)
    assert generated.count("layout: biblio") == 2          # one entry per page: two pages
    browser_save(copy, "NOTE-REFS\n", "NOTE-REFS\nthank the audience\n")
    assert carry_back(copy, generated, deck, source).changed
    assert "NOTE-REFS\nthank the audience\n-->" in deck.read_text()
    copy, generated, source = prepared(deck)
    second_page = generated.rindex("# References")                    # the list's generated page 2
    copy.write_text(generated[:second_page] + "# Further reading" + generated[second_page + len("# References"):])
    carried = carry_back(copy, generated, deck, source)
    assert carried.changed == [] and "a later page of the reference list" in carried.refused[0]
    copy.write_text(generated)
    browser_save(copy, "# References\n\n", "# Reading list\n\n")                 # its first page
    carried = carry_back(copy, generated, deck, source)
    assert carried.changed == [] and deck.read_text() == source
    assert carried.refused == [f"{deck}:{source.split(chr(10)).index('layout: biblio')}: the reference list is "
                               "made from the bibliography; an edit of this slide's content in the browser is "
                               "not kept: edit the source"]


def test_a_frontmatter_edit_or_a_new_slide_is_named_not_lost_silently(tmp_path):
    deck = cited_talk(tmp_path)
    copy, generated, source = prepared(deck)
    browser_save(copy, "layout: biblio", "layout: biblio\nclass: text-sm")
    carried = carry_back(copy, generated, deck, source)
    assert carried.changed == [] and "a frontmatter edit in the browser (class) is not kept" in carried.refused[0]
    assert carried.refused[0].startswith(f"{deck}:")
    copy.write_text(generated + "\n---\n\n# Added in the browser\n")
    carried = carry_back(copy, generated, deck, source)
    assert "added or removed slides" in carried.refused[0] and deck.read_text() == source


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds: float, what: str, pause=lambda: time.sleep(0.5)):
    """Poll `condition`; with a page open, pause with page.wait_for_timeout: playwright serves
    the page's requests (routed through deckbrowser's filter) only while Python calls into it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause()
    pytest.fail(f"waited {seconds:.0f} s for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dev_server(tmp_path):
    deck = cited_talk(tmp_path)
    port = free_port()
    log = open(tmp_path / "dev.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "decktools.dev", str(deck), "--port", str(port)],
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/__slidev/slides/1.json"), 120, "the dev server")
        yield deck, f"http://127.0.0.1:{port}", tmp_path / "dev.log"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def test_notes_typed_in_the_presenter_view_land_in_the_imported_source_file(dev_server):
    from tests.deckbrowser import browser_page
    deck, url, log = dev_server
    part = deck.parent / "pages" / "part.md"
    with browser_page(1280, 800) as (page, _):
        page.goto(f"{url}/presenter/2", wait_until="networkidle", timeout=120_000)
        page.get_by_title("Edit Notes").click()
        page.locator("textarea").first.press("End")
        page.locator("textarea").first.type(" Pause here.")
        wait_for(lambda: "Pause here." in part.read_text(), 60, f"the note in {part}",
                 pause=lambda: page.wait_for_timeout(500))
    assert part.read_text() == "---\n\n# Two\n\nFrom a page\n\n<!--\nNOTE-TWO Pause here.\n-->\n"
    wait_for(lambda: "dev: deck re-prepared" in log.read_text(), 30, "the re-preparation")
    assert "NOTE-TWO Pause here." in prepared_name(part).read_text()
    assert f"saved into {part}:8" in log.read_text()                   # the line typed in
    assert "not carried back" not in log.read_text()


def test_an_image_layout_shows_a_figure_whole_unless_the_slide_sizes_it(tmp_path):
    """Slidev's image layouts default to cover, which crops a figure's axes; a photo keeps it."""
    deck = write_talk(tmp_path)
    slides = {"/figures/circuits/kv-keys.png": "", "/photo.jpg": "", "/figures/circuits/kv-correct.png":
              "backgroundSize: 80%\n"}
    deck.write_text(deck.read_text() + "".join(f"\n---\nlayout: image-left\nimage: {image}\n{extra}---\n\n# Slide\n"
                                               for image, extra in slides.items()))
    for image in slides:
        touch(deck.parent / "public" / image.lstrip("/"), "an image")
    copy, generated, source = prepared(deck)
    sizes = [slide.frontmatter.get("backgroundSize") for slide in split_slides(copy, generated)[1][-3:]]
    assert sizes == ["contain", None, "80%"]
    browser_save(copy, "# Slide\n", "# Slide\n\nadded in the browser\n")
    added = source.split("\n").index("# Slide") + 3      # "added in the browser", after a blank line
    assert carry_back(copy, generated, deck, source).changed == [f"{deck}:{added}"]
    assert deck.read_text() == source.replace("# Slide\n", "# Slide\n\nadded in the browser\n", 1)


def test_an_edit_beside_a_citation_or_a_measured_number_keeps_their_source_form(tmp_path):
    """Trial T: typing elsewhere on a line that shows a citation or a <Measured> number wrote the
    prepared HTML (`<span class="measured" ...>6</span>`, "Amodei (2025)") into the source."""
    deck = cited_talk(tmp_path)
    shown = 'Hello [@olah2020zoom] and <Measured fig="lab/plot" value="n"/> units.'
    deck.write_text(deck.read_text().replace("Hello", shown, 1))
    touch(deck.parent / "public" / "figures" / "lab" / "plot.json", '{"n": 6}')
    copy, generated, source = prepared(deck)
    line = next(text for text in generated.split("\n") if text.startswith("Hello <span"))
    assert 'class="measured"' in line and 'class="citation"' in line
    browser_save(copy, line, "Well, " + line.replace(" units.", " units, as measured."))
    browser_save(copy, "See Olah & Cammarata (2020) for the circuits.", "See Olah & Cammarata (2020) for all circuits.")
    carried = carry_back(copy, generated, deck, source)
    assert carried.refused == [] and deck.read_text() == source.replace(
        shown, "Well, " + shown.replace(" units.", " units, as measured.")).replace(
        "See @olah2020zoom for the circuits.", "See @olah2020zoom for all circuits.")
    copy, generated, source = prepared(deck)                   # an edit of the shown number itself
    line = next(text for text in generated.split("\n") if text.startswith("Well, Hello <span"))
    browser_save(copy, line, line.replace(">6</span>", ">7</span>"))
    carried = carry_back(copy, generated, deck, source)
    assert deck.read_text() == source and carried.changed == []
    copy.write_text(generated.replace(line, line.replace(" and <span", "\nand <span")))   # split in two lines
    split = carry_back(copy, generated, deck, source)
    assert deck.read_text() == source and split.changed == [] and split.refused == [
        f"{deck}:1: the browser's edit would write a citation or a <Measured> number into the source as the slide "
        "shows it; it is not kept: edit the source"]
    copy.write_text(generated)
    browser_save(copy, line, line.replace(">6</span>", ">7</span>"))
    carried = carry_back(copy, generated, deck, source)
    assert carried.refused == [f"{deck}:1: the browser changed a citation or a <Measured> number as the slide shows "
                               f"it (\"{line.replace('>6</span>', '>7</span>')[:80]}\"); that line is kept as in the "
                               "source: edit its @key or <Measured> there"]


def test_the_browsers_saves_are_carried_back_once_they_stop_changing(tmp_path, capsys):
    """Trial T: Slidev's editor saves every half second while one types; carried back (and so
    re-prepared) at the first, the source kept "in P" of "in Practice"."""
    from decktools.dev import PreparedCopies
    deck = cited_talk(tmp_path)
    copies = PreparedCopies(deck, stable_seconds=0.6)
    copies.prepare()
    copy, source = prepared_name(deck), deck.read_text()
    generated = copy.read_text()
    for typed in ("# One i", "# One in P", "# One in Practice"):      # saves while typing
        copy.write_text(generated.replace("# One", typed, 1))
        copies.carry_back_edits()
        assert deck.read_text() == source
        time.sleep(0.2)
    time.sleep(0.7)
    copies.carry_back_edits()                                          # it stood still: carried
    assert deck.read_text() == source.replace("# One", "# One in Practice", 1)
    assert f"dev: the browser's edit saved into {deck}:7" in capsys.readouterr().out      # "# One" is line 7
    copies.prepare()
    copy.write_text(copy.read_text().replace("Hello", "Hello there", 1))
    copies.carry_back_edits()                                          # not yet carried, then
    copies.prepare()                                                   # the deck changes on disk
    assert f"dev: the browser's last edit of {deck} was not carried back" in capsys.readouterr().err
