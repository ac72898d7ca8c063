"""`make dev`: the Slidev dev server on localhost for rehearsing, kept in step with the sources.

Slidev serves the prepared deck; this loop re-prepares it whenever the speaker saves a deck file,
one of its bib files or a figure's numbers, and Slidev's own hot reload does the rest.

    python -m decktools.dev talk/slides.md --port 3030     # presenter mode: /presenter
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from decktools.build import slidev_command
from decktools.bib import deck_bib_files
from decktools.markdown import DeckError, read_deck
from decktools.prepare import prepare_deck


def watched_files(deck_path: Path) -> list[Path]:
    try:
        deck = read_deck(deck_path)
        files, headmatter = list(deck.files), deck.headmatter
    except DeckError:
        files, headmatter = [deck_path], {}
    figures = deck_path.parent / "public" / "figures"
    return files + deck_bib_files(deck_path, headmatter)[0] + [figures / "manifest.json"]


def snapshot(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths if p.exists()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path)
    parser.add_argument("--port", type=int, default=3030)
    options = parser.parse_args(argv)
    prepared = prepare_deck(options.deck)
    server = subprocess.Popen(slidev_command(options.deck.parent, prepared.name, "--port", str(options.port),
                                             "--bind", "127.0.0.1"), cwd=options.deck.parent)
    seen = snapshot(watched_files(options.deck))
    try:
        while server.poll() is None:
            time.sleep(1)
            current = snapshot(watched_files(options.deck))
            if current != seen:
                seen = current
                try:
                    prepare_deck(options.deck)
                    print("dev: deck re-prepared", flush=True)
                except SystemExit as problems:  # keep serving the last good deck
                    print(f"dev: not updated, the deck has errors:\n{problems}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
