"""Build a deck into a static site that needs no network: `make slides` ends here.

    python -m decktools.build talk/slides.md            # -> talk/dist/
    python -m decktools.build talk/workshop.md          # -> talk/dist-workshop/
    python -m decktools.build talk/slides.md --pdf      # -> talk/dist/slides.pdf (Debian chromium)

Steps: prepare the deck (check, render citations and the bibliography, fill numbers), skip the build
if nothing it reads changed since the last one (a hash of its inputs is stamped into the output),
else `slidev build` into a temporary folder that replaces the old output only when the build
succeeded (Ctrl-C keeps the old output too, and exits 130 saying so), and write index.html copies under every route of Slidev's router (/5/, /presenter/5/,
/overview/, /notes/, ...) so they work on any static file server, not just one that falls back to
index.html.

In `make slides`, a figure that fails keeps its previous outputs (the runner never removes them),
so the deck is still built with them, if it passes the check (a figure never made has no previous
image: the check stops the build at the slide that shows it); then each place that shows a failed
figure's previous image or number is printed with why it is stale, and make slides exits 1.

The inputs are every file of talk/ but those no build of this deck reads: other decks and the pages
only they import (markdown outside public/ and snippets/ that is not this deck's), other decks'
deck-meta, make rehearse's runs (rehearsals/), make pdf's exports/, the outputs (dist*, .slidev),
and node_modules, which counts through package.json, package-lock.json and npm's record of what is
installed (node_modules/.package-lock.json). Slidev reads, besides the deck and its `src:`
imports: public/, components/, layouts/, styles/ or style(s).css, setup/, snippets/,
global-top/bottom.vue, slide-top/bottom.vue, custom-nav-controls.vue, index.html, uno.config.ts,
vite.config.ts, .env files, package.json and whatever these import: so everything else is kept.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from decktools.check import DEFAULT_PROFILE, also_shown, declared_figure_ids, stale_figure_problems
from decktools import references
from decktools.deckmeta import failed_on_same_inputs, meta_path
from decktools.markdown import read_deck
from decktools.prepare import prepare_deck, prepared_name
from decktools.problems import Problem
from figures_src.runner import write_atomic

CHROMIUM = "/usr/bin/chromium"
STAMP = ".build-inputs"
NOT_INPUTS = {"node_modules", ".slidev", "rehearsals", "exports"}   # folders of talk/ no build reads
INSTALLED = Path("node_modules/.package-lock.json")  # npm's record of what is installed
SLIDE_ROUTES = ("", "presenter/")  # "" is the audience view, /5; Slidev's router has no /notes/5
PAGES = ("overview", "presenter", "entry", "notes")   # routes of their own (presenter: /presenter/1)
PRINT_PAGES = ("print", "presenter/print")            # Slidev's router has them only with `download:`


def output_dir(deck_path: Path) -> Path:
    name = deck_path.stem
    return deck_path.parent / ("dist" if name == "slides" else f"dist-{name}")


def is_output(name: str) -> bool:
    return name in NOT_INPUTS or name.startswith(("dist", ".slidev"))


def is_input(relative: Path, deck_stem: str, own_markdown: set[Path]) -> bool:
    """Whether a file of talk/ (its path relative to talk/) is read by this deck's build."""
    top = relative.parts[0]
    if relative.suffix == ".md" and top not in ("public", "snippets"):
        return relative in own_markdown           # another deck, or a page only others import
    if relative.suffix == ".bib" and top != "public":
        return False        # Slidev reads no bib: prepare writes what the deck cites into its prepared copy
    if relative.parts[:2] == ("public", "deck-meta"):
        return relative.name == f"{deck_stem}.json"
    return len(relative.parts) > 1 or not is_output(top)


def talk_files(talk_dir: Path):
    """Every file under talk/ (relative paths), skipping node_modules and talk/'s output folders."""
    for folder, subfolders, files in os.walk(talk_dir):
        top = Path(folder) == talk_dir
        subfolders[:] = sorted(d for d in subfolders if d != "node_modules" and not (top and is_output(d)))
        yield from ((Path(folder) / name).relative_to(talk_dir) for name in sorted(files))


def build_inputs(deck_path: Path) -> list[Path]:
    """What this deck's build reads, relative to talk/: its markdown (and the prepared copies),
    the rest of talk/ but other decks' files and what no build reads, and the package records."""
    talk_dir = deck_path.parent
    markdown = [f for path in read_deck(deck_path).files for f in (path, prepared_name(path))]
    own = {Path(os.path.relpath(p.resolve(), talk_dir.resolve())) for p in markdown}
    inputs = [r for r in talk_files(talk_dir) if is_input(r, deck_path.stem, own)]
    outside = sorted(r for r in own if r.parts[0] == ".." and (talk_dir / r).is_file())
    return inputs + outside + ([INSTALLED] if (talk_dir / INSTALLED).is_file() else [])


def inputs_hash(deck_path: Path) -> str:
    """sha256 over the paths and bytes of every input of the deck's build (build_inputs)."""
    digest = hashlib.sha256(deck_path.name.encode())
    for relative in build_inputs(deck_path):
        digest.update(str(relative).encode() + b"\0" + (deck_path.parent / relative).read_bytes())
    return digest.hexdigest()


def slidev_command(talk_dir: Path, *args: str) -> list[str]:
    binary = (talk_dir / "node_modules" / ".bin" / "slidev").resolve()
    if not binary.exists():
        raise SystemExit(f"{binary} not found: run `make node` (npm ci in talk/)")
    return [str(binary), *args]


def slidev(talk_dir: Path, *args: str) -> None:
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", NODE_OPTIONS="--max-old-space-size=4096")
    result = subprocess.run(slidev_command(talk_dir, *args), cwd=talk_dir, env=env)
    if result.returncode in (-signal.SIGINT, 128 + signal.SIGINT):   # Ctrl-C reached node first
        raise KeyboardInterrupt
    if result.returncode != 0:
        raise SystemExit(f"slidev {args[0]} failed (exit {result.returncode}); see its output above")


def add_deep_links(out: Path, slide_count: int, printable: bool) -> None:
    """index.html under each route, so /5, /presenter/5 and /notes load on a plain static server."""
    index = (out / "index.html").read_text(encoding="utf-8")
    for route in SLIDE_ROUTES:
        for number in range(1, slide_count + 1):
            write_atomic(out / f"{route}{number}" / "index.html", index)
    for page in PAGES + (PRINT_PAGES if printable else ()):
        write_atomic(out / page / "index.html", index)


def printable(headmatter: dict) -> bool:
    """Whether Slidev builds the print views: only with `download:` on (it then exports a PDF too)."""
    return headmatter.get("download") in (True, "true", "auto")


def build(deck_path: Path, base: str = "/", force: bool = False) -> Path:
    """Build the deck; return its output folder. Does nothing when nothing changed."""
    prepared = prepare_deck(deck_path)
    talk_dir, out = deck_path.parent, output_dir(deck_path)
    stamp = inputs_hash(deck_path) + base
    if not force and (out / STAMP).exists() and (out / STAMP).read_text() == stamp:
        print(f"slides: {out} is up to date")
        return out
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    headmatter = read_deck(prepared).headmatter
    pdf = ("--executable-path", CHROMIUM) if printable(headmatter) else ()   # its PDF: Debian's chromium
    try:
        slidev(talk_dir, "build", prepared.name, "--out", staging.name, "--base", base, *pdf)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # numbered as prepare numbered them for the presenter panel: bibliography pages count
    slides = json.loads(meta_path(deck_path).read_text(encoding="utf-8"))["slides"]
    add_deep_links(staging, len(slides), printable(headmatter))
    (staging / STAMP).write_text(stamp)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"slides: built {deck_path} into {out}")
    return out


def export_pdf(deck_path: Path, chromium: str = CHROMIUM) -> Path:
    """PDF of the deck through Debian's chromium (Slidev never downloads a browser here)."""
    prepared = prepare_deck(deck_path)
    if not Path(chromium).exists():
        raise SystemExit(f"{chromium} not found: install Debian's chromium (apt-get install chromium)")
    target = deck_path.parent / "exports" / f"{deck_path.stem}.pdf"  # outside dist: rebuilds replace dist
    target.parent.mkdir(parents=True, exist_ok=True)
    # --wait: Slidev's exporter checks for slides still loading once, on the print page; a slide
    # whose chunk had not started loading by then printed blank (seen on a loaded 2-core machine:
    # the second slide once, the reference list's pages once with 3 s)
    slidev(deck_path.parent, "export", prepared.name, "--executable-path", chromium,
           "--output", str(target.resolve()), "--timeout", "120000", "--wait", "8000")
    print(f"pdf: {target}")
    return target


def forced_failure_problems(deck, deck_path: Path, already: set[tuple]) -> list[Problem]:
    """Where the deck shows a figure whose forced remake failed with the inputs its image was made
    from (not stale, so check's warnings leave it out): it shows that image, which is current.
    `already`: the places of the stale warnings; their figures are left out."""
    places: dict[str, list] = {}
    for ref, figure_id in references.figures(deck.shown()):
        places.setdefault(figure_id, []).append(ref)
    warned = {figure_id for figure_id, refs in places.items()
              if (refs[0].path, refs[0].line, refs[0].column) in already}
    failed = failed_on_same_inputs(set(places) - warned, deck_path.parent / "public" / "figures")
    return [Problem(refs[0].path, refs[0].line, refs[0].column, f"figure {figure_id!r} failed when remade "
                    f"({failed[figure_id]}); the slide shows its image made earlier from the same inputs"
                    f"{also_shown(refs)}", "warning")
            for figure_id, refs in places.items() if figure_id in failed]


def previous_outputs_summary(deck_path: Path, out: Path, profile: str = DEFAULT_PROFILE,
                             command: str = "make slides") -> int:
    """After figures failed: where the built deck shows their previous outputs (check's stale
    warnings in the profile the figures were run in: a failed figure whose previous outputs were
    made in another profile is as stale as one whose script changed), a closing line, and the exit
    status, 1 (make slides fails though the deck is built)."""
    declared, _ = declared_figure_ids(deck_path)
    deck = read_deck(deck_path)
    stale = stale_figure_problems(deck, deck_path, declared, profile)
    stale += forced_failure_problems(deck, deck_path, {(p.path, p.line, p.column) for p in stale})
    for problem in stale:
        print(problem, file=sys.stderr)
    where = ", shown where the warnings above say" if stale else ""
    print(f"slides: figures failed (see above); {out} was built with their previous outputs{where}: fix the "
          f"figures and run {command} again", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make slides", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path)
    parser.add_argument("--base", default="/", help="URL path the site is served under")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--pdf", action="store_true", help="export a PDF instead of the site")
    parser.add_argument("--figures-failed", action="store_true",
                        help="make slides, make pdf: some of the deck's figures failed; build, then say so and exit 1")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=["quick", "full", "gpu"],
                        help="the PROFILE the figures were run in (make slides passes it)")
    options = parser.parse_args(argv)
    try:
        out = export_pdf(options.deck) if options.pdf else build(options.deck, options.base, options.force)
    except KeyboardInterrupt:
        print(f"slides: interrupted; {output_dir(options.deck)} is as it was", file=sys.stderr)
        return 130
    if not options.figures_failed:
        return 0
    return previous_outputs_summary(options.deck, out, options.profile, "make pdf" if options.pdf else "make slides")


if __name__ == "__main__":
    sys.exit(main())
