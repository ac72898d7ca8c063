"""The deck build (decktools/build.py): what it counts as its inputs, and the routes of a real build.

Decks are real files in a temporary talk/ folder that has the project's real node_modules; the
routes are checked by a real `slidev build` served by a plain static file server (no fallback to
index.html) and visited in Debian's headless chromium (tests/deckbrowser.py).
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from decktools.build import inputs_hash, previous_outputs_summary
from tests.deckbrowser import browser_page, serve
from tests.talkdir import link_node_modules

REPO = Path(__file__).resolve().parent.parent

LECTURE = """---
title: Lecture
---

# One

Hello

<!--
NOTE-ONE
-->

---
src: ./pages/part.md
---
"""
PART = "---\n\n# Two\n\nFrom a page\n\n<!--\nNOTE-TWO\n-->\n"


def write_talk(tmp_path: Path, head_extra: str = "") -> Path:
    talk = tmp_path / "talk"
    (talk / "pages").mkdir(parents=True)
    link_node_modules(talk)
    for name in ("package.json", "package-lock.json"):
        (talk / name).write_bytes((REPO / "talk" / name).read_bytes())
    (talk / "lecture.md").write_text(LECTURE.replace("title: Lecture", "title: Lecture" + head_extra))
    (talk / "pages" / "part.md").write_text(PART)
    return talk / "lecture.md"


def touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("change", [
    "rehearsals/lecture-2026-12-07T10-00-00.json", "course.md", "pages/course-only.md",
    "course.prepared.md", "public/deck-meta/course.json", "exports/lecture.pdf", "dist-course/index.html",
    ".slidev/cache.json", "workshop-extra.bib", "lecture.bib",
])
def test_other_decks_and_rehearsal_runs_are_not_inputs(tmp_path, change):
    deck = write_talk(tmp_path)
    before = inputs_hash(deck)
    touch(deck.parent / change)
    assert inputs_hash(deck) == before


@pytest.mark.parametrize("change", [
    "lecture.md", "pages/part.md", "lecture.prepared.md", "pages/part.prepared.md", "public/deck-meta/lecture.json",
    "components/KeyIdea.vue", "layouts/cover.vue", "styles/index.css", "style.css", "setup/main.ts",
    "global-top.vue", "public/figures/x/y.png", "public/notes.md", "snippets/code.md", "uno.config.ts",
    "vite.config.ts", ".env", "package.json", "utils/helper.ts", "public/figures/distribution/z.png",
    "public/biblio/served.bib",
])
def test_what_slidev_reads_for_this_deck_is_an_input(tmp_path, change):
    deck = write_talk(tmp_path)
    before = inputs_hash(deck)
    touch(deck.parent / change, "changed")
    assert inputs_hash(deck) != before, f"{change} is read by the build but not hashed"


def test_the_hash_does_not_depend_on_how_the_deck_path_is_written(tmp_path, monkeypatch):
    deck = write_talk(tmp_path)
    absolute = inputs_hash(deck)
    monkeypatch.chdir(tmp_path)
    assert inputs_hash(Path("talk/lecture.md")) == absolute


# What each route shows once the app has started: the view Slidev's router gives that path.
ROUTES = {
    "/2": "#slide-content",
    "/presenter/2": ".slidev-presenter",
    "/presenter": ".slidev-presenter",
    "/overview": ".slidev-layout",
    "/notes": "text=NOTE-ONE",
    "/entry": "a[href*='presenter']",
}


def build(deck: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "decktools.build", str(deck)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_every_route_of_a_built_deck_opens_its_view_on_a_plain_static_server(tmp_path):
    deck = write_talk(tmp_path)
    result = build(deck)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = deck.parent / "dist-lecture"
    with serve(site) as url, browser_page() as (page, log):
        for route, selector in ROUTES.items():
            response = page.goto(f"{url}{route}", wait_until="load")
            assert response.status == 200, route
            assert "Directory listing" not in page.content(), route
            page.wait_for_selector(selector, timeout=15000)
        page.goto(f"{url}/presenter/2", wait_until="load")
        page.wait_for_selector("text=NOTE-TWO", timeout=15000)     # the presenter shows slide 2's notes
        assert log.blocked == []
    touch(deck.parent / "rehearsals" / "lecture-2026-12-07T10-00-00.json", "{}")
    touch(deck.parent / "course.md", "---\ntitle: Course\n---\n\n# Other deck\n")
    again = build(deck)
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout + again.stderr
    assert_ctrl_c_during_slidev_keeps_the_site(deck, site)


def assert_ctrl_c_during_slidev_keeps_the_site(deck: Path, site: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while Slidev builds:
    "interrupted" and exit 130, not a build failure; the previous site whole, no staging left."""
    stamp = (site / ".build-inputs").read_text()
    deck.write_text(deck.read_text().replace("Hello", "Hello again"))
    prepared = deck.with_name("lecture.prepared.md")
    building = subprocess.Popen([sys.executable, "-m", "decktools.build", str(deck)], cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Hello again" not in prepared.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)                         # prepared: the next step is slidev's build
    time.sleep(3)
    os.killpg(building.pid, signal.SIGINT)
    out, err = building.communicate(timeout=120)
    assert building.returncode == 130 and "interrupted" in err and "failed" not in err, out[-2000:] + err[-2000:]
    assert (site / ".build-inputs").read_text() == stamp and (site / "2" / "index.html").exists()
    assert not site.with_name(site.name + ".building").exists()


@pytest.mark.slow
def test_with_download_on_the_print_views_open_and_the_pdf_is_made_with_debian_chromium(tmp_path):
    """Slidev's router has /print and /presenter/print only when the headmatter has `download:`."""
    deck = write_talk(tmp_path, "\ndownload: true")
    result = build(deck)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = deck.parent / "dist-lecture"
    assert (site / "slidev-exported.pdf").stat().st_size > 1000
    with serve(site) as url, browser_page() as (page, log):
        for route, shown in (("/print", ["Hello", "From a page"]), ("/presenter/print", ["NOTE-ONE", "NOTE-TWO"])):
            assert page.goto(f"{url}{route}", wait_until="load").status == 200
            page.wait_for_selector(f"text={shown[1]}", timeout=15000)
            text = page.evaluate("() => document.body.innerText")
            assert all(words in text for words in shown), (route, text[:300])


PLOT = '''
import matplotlib.pyplot as plt

FIGURES = {"lab/plot": {"make": "make"}}

def make(ctx):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.save(fig)
    return {"top1": 0.5}
'''


def run_module(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


SHOWN_PLOT = "![plot](/figures/lab/plot.png)"


def deck_showing_plot(tmp_path: Path, script: str) -> tuple[Path, list[str]]:
    """A deck whose first slide shows lab/plot, the script that declares it, and the runner's
    folder options (decktools.figures takes them as make slides passes them)."""
    deck = write_talk(tmp_path)
    deck.write_text(deck.read_text().replace("Hello", f"Hello\n\n{SHOWN_PLOT}"))
    scripts, figures = tmp_path / "figures_src", deck.parent / "public" / "figures"
    touch(scripts / "lab.py", script)
    return deck, ["--scripts-dir", str(scripts), "--figures-dir", str(figures), "--models-dir",
                  str(tmp_path / "models"), "--device", "cpu"]


@pytest.mark.slow
def test_a_failing_figure_keeps_its_image_the_deck_is_built_with_it_and_the_build_says_where(tmp_path):
    """make slides' two steps: the runner exits 1 (a figure failed, its previous outputs kept), then
    the build with --figures-failed builds the deck, names each place showing the old image, exits 1."""
    deck, runner = deck_showing_plot(tmp_path, PLOT)
    runner, scripts, shown = runner + ["--profile", "quick"], tmp_path / "figures_src", SHOWN_PLOT
    assert run_module("decktools.figures", str(deck), *runner).returncode == 0
    touch(scripts / "lab.py", PLOT.replace("ax.plot([0, 1])", "ax.plot([0, 1])\n    raise ValueError('oops')"))
    failed = run_module("decktools.figures", str(deck), *runner)
    assert failed.returncode == 1 and "FAILED lab/plot: ValueError: oops" in failed.stderr
    # --profile: make slides passes its PROFILE, in which the figures were made
    built = run_module("decktools.build", str(deck), "--figures-failed", "--profile", "quick")
    assert built.returncode == 1, built.stderr[-3000:]
    assert (deck.parent / "dist-lecture" / "figures" / "lab" / "plot.png").is_file()
    line = deck.read_text().split("\n").index(shown) + 1
    column = shown.index("/figures") + 1
    # the figure failed with these very inputs: where, and to fix that, not to run the command again
    assert (f"{deck}:{line}:{column}: warning: figure 'lab/plot' is stale: script changed; its last run with these "
            f"inputs failed (ValueError: oops at {scripts / 'lab.py'}:9): fix that first; the slide shows its "
            "old image\n") in built.stderr, built.stderr[-1500:]
    assert "to remake it" not in built.stderr
    assert built.stderr.strip().endswith(f"{deck.parent / 'dist-lecture'} was built with their previous outputs, "
                                         "shown where the warnings above say: fix the figures and run make slides again")
    # make pdf: the handout is made with the previous image too (trial R got no PDF for one failed figure)
    recipe = subprocess.run(["make", "-n", "--no-print-directory", "pdf", f"DECK={deck}", "PROFILE=quick"], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    assert "|| status=$?" in recipe and "--pdf --profile quick $(if [ $status = 1 ]; then echo --figures-failed; fi)" in recipe
    exported = run_module("decktools.build", str(deck), "--pdf", "--figures-failed", "--profile", "quick")
    assert exported.returncode == 1, exported.stderr[-3000:]
    assert (deck.parent / "exports" / "lecture.pdf").stat().st_size > 1000
    assert f"{deck}:{line}:{column}: warning: figure 'lab/plot' is stale" in exported.stderr
    assert exported.stderr.strip().endswith("shown where the warnings above say: fix the figures and run make pdf again")


def test_a_forced_remake_that_fails_on_unchanged_inputs_is_named_where_the_deck_shows_it(tmp_path, capsys):
    """make slides FORCE=1 with a figure that fails this time (its inputs unchanged, so not stale):
    the build's summary names where the deck shows it, not only that figures failed."""
    flaky = PLOT.replace("import matplotlib.pyplot as plt", "import os\nimport matplotlib.pyplot as plt").replace(
        "    ax.plot([0, 1])", "    if os.environ.get('LAB_FAIL'):\n        raise RuntimeError('out of memory')\n    ax.plot([0, 1])")
    deck, runner = deck_showing_plot(tmp_path, flaky)
    runner += ["--profile", "quick"]
    assert run_module("decktools.figures", str(deck), *runner).returncode == 0
    os.environ["LAB_FAIL"] = "1"
    try:
        failed = run_module("decktools.figures", str(deck), *runner, "--force")
    finally:
        del os.environ["LAB_FAIL"]
    assert failed.returncode == 1 and "RuntimeError: out of memory" in failed.stderr
    assert previous_outputs_summary(deck, deck.parent / "dist-lecture", "quick") == 1
    said = capsys.readouterr().err
    line, column = deck.read_text().split("\n").index(SHOWN_PLOT) + 1, SHOWN_PLOT.index("/figures") + 1
    assert (f"{deck}:{line}:{column}: warning: figure 'lab/plot' failed when remade (RuntimeError: out of memory at "
            f"{tmp_path / 'figures_src' / 'lab.py'}:") in said, said
    assert "the slide shows its image made earlier from the same inputs" in said and "shown where the warnings above say" in said


PROFILED = PLOT.replace('{"make": "make"}', '{"make": "make", "params": {"quick": {"n": 3}, "full": {"n": 4000}}}').replace(
    "    ax.plot([0, 1])", "    if ctx.params['n'] > 100:\n        raise ValueError('asks for more rows than the data has')\n"
    "    ax.plot([0, 1])")


def test_a_figure_that_fails_in_full_after_a_quick_build_is_named_where_the_deck_shows_it(tmp_path, capsys):
    """make slides (PROFILE=full) after a quick build: the figure fails, its quick image is kept and
    the deck built with it; the build's summary names each place showing it, with the profile change."""
    deck, runner = deck_showing_plot(tmp_path, PROFILED)
    assert run_module("decktools.figures", str(deck), *runner, "--profile", "quick").returncode == 0
    failed = run_module("decktools.figures", str(deck), *runner, "--profile", "full")
    assert failed.returncode == 1 and "FAILED lab/plot: ValueError" in failed.stderr, failed.stderr
    assert previous_outputs_summary(deck, deck.parent / "dist-lecture", "full") == 1
    said = capsys.readouterr().err
    line = deck.read_text().split("\n").index(SHOWN_PLOT) + 1
    assert (f"{deck}:{line}:{SHOWN_PLOT.index('/figures') + 1}: warning: figure 'lab/plot' is stale: profile changed "
            "from quick to full; its last run with these inputs failed (ValueError: asks for more rows than the data "
            f"has at {tmp_path / 'figures_src' / 'lab.py'}:9): fix that first; the slide shows its old image\n") in said, said
    assert "shown where the warnings above say" in said


FIGURES_DECK = """---
title: Figures
---

# Cover

A subtitle naming `my_nets/tiny.py`, the speaker's own file.

---

# A tall figure right after the title

![tall](/tall.png)

---

# Words, a tall figure, a caption

Some words before.

![tall](/tall.png)

Caption after the figure.

---

# Two figures side by side

<div class="grid grid-cols-2 gap-4">
<img src="/tall.png"/>
<img src="/wide.png"/>
</div>

Caption under the grid.

---
layout: image-right
image: /figures/circuits/kv-keys.png
---

# A figure as the right half

---
layout: two-cols
---

# Two columns

![tall](/tall.png)

::right::

Text in the right column.

![wide](/wide.png)

Caption under the right column's figure.
"""

# On the slide shown (the others are in the DOM, hidden): each image's opacity as drawn (its own
# times its ancestors'), its box and the captions' boxes, relative to the slide.
SHOWN_FIGURES = """() => {
  const slide = document.querySelector('#slide-content').getBoundingClientRect();
  const drawn = el => { let o = 1; for (; el; el = el.parentElement) o *= parseFloat(getComputedStyle(el).opacity); return o; };
  const box = el => { const r = el.getBoundingClientRect();
                      return [r.left - slide.left, r.top - slide.top, r.right - slide.left, r.bottom - slide.top]; };
  const shown = [...document.querySelectorAll('#slide-content img, #slide-content p')].filter(e => e.getBoundingClientRect().width > 0);
  const half = [...document.querySelectorAll('#slide-content div')].find(d => d.style.backgroundImage);
  return {size: [slide.width, slide.height], halfSize: half ? getComputedStyle(half).backgroundSize : null,
          images: shown.filter(e => e.tagName === 'IMG').map(i => ({opacity: drawn(i), box: box(i), height: i.naturalHeight})),
          captions: shown.filter(e => e.innerText.startsWith('Caption')).map(box)};
}"""


def contrast(png: bytes) -> float:
    """The WCAG contrast ratio between the lightest and darkest 1% of a screenshot's pixels:
    text against what is behind it."""
    import io
    import numpy as np
    from PIL import Image
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)[4:-4, 4:-4] / 255  # not the box's rim
    linear = np.where(pixels <= 0.04045, pixels / 12.92, ((pixels + 0.055) / 1.055) ** 2.4)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    dark, light = np.percentile(luminance, [1, 99])
    return (light + 0.05) / (dark + 0.05)


def tall_and_wide_figures(public: Path) -> None:
    """A figure taller than a slide (1000 px) and a wide one, as a figure script saves them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for name, size in (("tall", (4, 10)), ("wide", (8, 5))):
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1])
        fig.savefig(public / f"{name}.png", dpi=100)
        plt.close(fig)


@pytest.mark.slow
@pytest.mark.parametrize("theme", ["", "theme: seriph\n"])
def test_a_figure_is_never_faded_and_fits_on_its_slide_whole(tmp_path, theme):
    """Slidev's default theme (a deck with only a title) and seriph fade the paragraph after a title
    (`h1 + p`): a figure there was drawn at half opacity; a figure taller than the slide ran off its
    bottom, and pushed the caption off; in a column of two-cols too."""
    deck = write_talk(tmp_path)
    deck.write_text(FIGURES_DECK.replace("title: Figures\n", "title: Figures\n" + theme))
    (deck.parent / "style.css").write_bytes((REPO / "talk" / "style.css").read_bytes())
    shutil.copytree(REPO / "talk" / "layouts", deck.parent / "layouts")        # the project's dark cover
    (deck.parent / "public").mkdir()
    tall_and_wide_figures(deck.parent / "public")
    (deck.parent / "public" / "figures" / "circuits").mkdir(parents=True)      # a figure id a script declares
    shutil.copy(deck.parent / "public" / "wide.png", deck.parent / "public" / "figures" / "circuits" / "kv-keys.png")
    result = build(deck)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with serve(deck.parent / "dist-lecture") as url, browser_page(1280, 720) as (page, log):
        for number, (images, captions) in {2: (1, 0), 3: (1, 1), 4: (2, 1), 6: (2, 1)}.items():
            page.goto(f"{url}/{number}", wait_until="networkidle")
            page.wait_for_selector("#slide-content img", state="attached", timeout=15000)
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            shown = page.evaluate(SHOWN_FIGURES)
            width, height = shown["size"]
            assert len(shown["images"]) == images and len(shown["captions"]) == captions, (number, shown)
            for image in shown["images"]:
                assert image["opacity"] == 1, (number, image)
                left, top, right, bottom = image["box"]
                assert 0 <= left < right <= width and 0 <= top < bottom <= height, (number, image, shown["size"])
            for left, top, right, bottom in shown["captions"]:      # under the figures of its column
                above = [i["box"][3] for i in shown["images"] if i["box"][0] < right and left < i["box"][2]]
                assert 0 <= top < bottom <= height and bottom > max(above), (number, shown)
        page.goto(f"{url}/1", wait_until="networkidle")     # inline code on the dark cover: as legible as its line
        subtitle = page.locator("#slide-content p").first
        assert contrast(subtitle.locator("code").screenshot()) > max(3, 0.7 * contrast(subtitle.screenshot()))
        page.goto(f"{url}/5", wait_until="networkidle")     # image-right: the whole figure, not cropped to fill
        page.wait_for_function(f"() => ({SHOWN_FIGURES})().halfSize !== null", timeout=15000)
        assert page.evaluate(SHOWN_FIGURES)["halfSize"] == "contain"
        assert log.blocked == [] and log.failed == []


def test_make_slides_reports_an_unknown_citation_before_making_any_figure(tmp_path):
    """A typo in a citation key fails make slides at once, naming its line, not after minutes of
    figures; make deck-figures (make dev, make pdf: a deck being edited) still makes them."""
    deck, runner = deck_showing_plot(tmp_path, PLOT)
    deck.write_text(deck.read_text().replace("Hello", "Hello, as shown [@olah2017featur]."))
    line = deck.read_text().split("\n").index("Hello, as shown [@olah2017featur].") + 1
    stopped = run_module("decktools.figures", str(deck), "--check-first", *runner, "--profile", "quick")
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    assert f"{deck}:{line}:" in stopped.stderr and "unknown citation key 'olah2017featur'" in stopped.stderr
    assert "did you mean" in stopped.stderr and "no figure was made" in stopped.stderr
    assert not (deck.parent / "public" / "figures" / "lab" / "plot.png").exists()
    made = run_module("decktools.figures", str(deck), *runner, "--profile", "quick")
    assert made.returncode == 0 and (deck.parent / "public" / "figures" / "lab" / "plot.png").is_file()
    recipe = subprocess.run(["make", "-n", "--no-print-directory", "slides", f"DECK={deck}"], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    assert f"-m decktools.figures {deck} --check-first" in recipe
