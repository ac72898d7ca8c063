"""Build a deck into a static site that needs no network: `make slides` ends here.

    python -m decktools.build talk/slides.md            # -> talk/dist/
    python -m decktools.build talk/workshop.md          # -> talk/dist-workshop/
    python -m decktools.build talk/slides.md --pdf      # -> talk/dist/slides.pdf (Debian chromium)

Steps: prepare the deck (check, render citations and the bibliography, fill numbers), skip the build
if nothing it reads changed since the last one (a hash of talk/'s sources is stamped into the
output), else `slidev build` into a temporary folder that replaces the old output only when the
build succeeded, and write index.html copies under every slide's path (/5/, /presenter/5/, ...)
so deep links work on any static file server, not just one that falls back to index.html.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from decktools.deckmeta import meta_path
from decktools.prepare import prepare_deck
from figures_src.runner import write_atomic

STAMP = ".build-inputs"
NOT_INPUTS = {"node_modules", ".slidev", "dist"}
SLIDE_ROUTES = ("", "presenter/", "notes/", "print/")  # "" is the audience view, /5


def output_dir(deck_path: Path) -> Path:
    name = deck_path.stem
    return deck_path.parent / ("dist" if name == "slides" else f"dist-{name}")


def inputs_hash(talk_dir: Path, prepared: Path) -> str:
    """sha256 over every source file of talk/ (paths and bytes), the prepared deck included."""
    digest = hashlib.sha256(str(prepared.name).encode())
    for path in sorted(talk_dir.rglob("*")):
        relative = path.relative_to(talk_dir)
        if path.is_file() and not (set(relative.parts) & NOT_INPUTS) and not relative.parts[0].startswith("dist"):
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def slidev_command(talk_dir: Path, *args: str) -> list[str]:
    binary = (talk_dir / "node_modules" / ".bin" / "slidev").resolve()
    if not binary.exists():
        raise SystemExit(f"{binary} not found: run `make node` (npm ci in talk/)")
    return [str(binary), *args]


def slidev(talk_dir: Path, *args: str) -> None:
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", NODE_OPTIONS="--max-old-space-size=4096")
    result = subprocess.run(slidev_command(talk_dir, *args), cwd=talk_dir, env=env)
    if result.returncode != 0:
        raise SystemExit(f"slidev {args[0]} failed (exit {result.returncode}); see its output above")


def add_deep_links(out: Path, slide_count: int) -> None:
    """index.html under each route, so /5 and /presenter/5 load on a plain static server."""
    index = (out / "index.html").read_text(encoding="utf-8")
    for route in SLIDE_ROUTES:
        for number in range(1, slide_count + 1):
            write_atomic(out / f"{route}{number}" / "index.html", index)
    for page in ("overview", "presenter", "entry"):
        write_atomic(out / page / "index.html", index)


def build(deck_path: Path, base: str = "/", force: bool = False) -> Path:
    """Build the deck; return its output folder. Does nothing when nothing changed."""
    prepared = prepare_deck(deck_path)
    talk_dir, out = deck_path.parent, output_dir(deck_path)
    stamp = inputs_hash(talk_dir, prepared) + base
    if not force and (out / STAMP).exists() and (out / STAMP).read_text() == stamp:
        print(f"slides: {out} is up to date")
        return out
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    slidev(talk_dir, "build", prepared.name, "--out", staging.name, "--base", base)
    # numbered as prepare numbered them for the presenter panel: bibliography pages count
    add_deep_links(staging, len(json.loads(meta_path(deck_path).read_text(encoding="utf-8"))["slides"]))
    (staging / STAMP).write_text(stamp)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"slides: built {deck_path} into {out}")
    return out


def export_pdf(deck_path: Path, chromium: str = "/usr/bin/chromium") -> Path:
    """PDF of the deck through Debian's chromium (Slidev never downloads a browser here)."""
    prepared = prepare_deck(deck_path)
    if not Path(chromium).exists():
        raise SystemExit(f"{chromium} not found: install Debian's chromium (apt-get install chromium)")
    target = deck_path.parent / "exports" / f"{deck_path.stem}.pdf"  # outside dist: rebuilds replace dist
    target.parent.mkdir(parents=True, exist_ok=True)
    # --wait: Slidev's exporter checks for slides still loading once, on the print page; a slide
    # whose chunk had not started loading by then printed blank (seen on a loaded 2-core machine)
    slidev(deck_path.parent, "export", prepared.name, "--executable-path", chromium,
           "--output", str(target.resolve()), "--timeout", "120000", "--wait", "3000")
    print(f"pdf: {target}")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make slides", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path)
    parser.add_argument("--base", default="/", help="URL path the site is served under")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--pdf", action="store_true", help="export a PDF instead of the site")
    options = parser.parse_args(argv)
    if options.pdf:
        export_pdf(options.deck)
    else:
        build(options.deck, options.base, options.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
