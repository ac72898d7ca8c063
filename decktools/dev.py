"""`make dev`: the Slidev dev server on localhost for rehearsing, kept in step with the sources.

Slidev serves the prepared deck; this loop re-prepares it whenever the speaker saves a deck file,
one of its bib files or a figure's numbers, and Slidev's own hot reload does the rest. Notes and
content edited in the browser (presenter mode's "Edit Notes", Slidev's editor) are saved by Slidev
into the prepared copy; the loop carries them back into the deck's own files (decktools.carryback)
before anything re-prepares the copy.

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
from decktools.carryback import carry_back
from decktools.markdown import DeckError, read_deck
from decktools.prepare import prepare_deck, prepared_name


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


STABLE_SECONDS = 2.0     # Slidev's editor saves every half second while one types


class PreparedCopies:
    """What the loop last prepared: each copy's text and the source text it was made from; and
    what the browser last saved into each copy, since when."""

    def __init__(self, deck_path: Path, stable_seconds: float = STABLE_SECONDS):
        self.deck_path, self.stable_seconds = deck_path, stable_seconds
        self.made: dict[Path, tuple[str, Path, str]] = {}
        self.saved: dict[Path, tuple[str, float]] = {}

    def prepare(self) -> None:
        for copy in self.saved:       # the browser saved into it, then a source changed on disk
            print(f"dev: the browser's last edit of {self.made[copy][1]} was not carried back (the deck "
                  "changed on disk first): make it in the source", file=sys.stderr, flush=True)
        self.saved = {}
        prepare_deck(self.deck_path)
        self.made = {}
        for source in read_deck(self.deck_path).files:
            copy = prepared_name(source)
            self.made[copy] = (copy.read_text(encoding="utf-8"), source, source.read_text(encoding="utf-8"))

    def carry_back_edits(self) -> None:
        """Carry the browser's saves into the sources (the loop's next look re-prepares them), each
        once it has stood for stable_seconds: carried back, and so re-prepared, while the speaker
        types, it cut the later saves off (the source kept "in P" of "in Practice")."""
        for copy, (generated, source, source_text) in list(self.made.items()):
            text = copy.read_text(encoding="utf-8") if copy.exists() else generated
            if text == generated:
                self.saved.pop(copy, None)
                continue
            if self.saved.get(copy, ("",))[0] != text:
                self.saved[copy] = (text, time.monotonic())
            if time.monotonic() - self.saved[copy][1] < self.stable_seconds:
                continue
            if source.read_text(encoding="utf-8") != source_text:
                print(f"dev: {source} changed on disk while the browser edited its slides; the browser's "
                      "edit is not kept: make it in the source", file=sys.stderr, flush=True)
                continue
            carried = carry_back(copy, generated, source, source_text)
            for where in carried.changed:
                print(f"dev: the browser's edit saved into {where}", flush=True)
            for message in carried.refused:
                print(f"dev: {message}", file=sys.stderr, flush=True)
            self.made[copy] = (copy.read_text(encoding="utf-8"), source, source_text)   # said once
            self.saved.pop(copy, None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path)
    parser.add_argument("--port", type=int, default=3030)
    options = parser.parse_args(argv)
    copies = PreparedCopies(options.deck)
    copies.prepare()
    server = subprocess.Popen(slidev_command(options.deck.parent, prepared_name(options.deck).name, "--port",
                                             str(options.port), "--bind", "127.0.0.1"), cwd=options.deck.parent)
    seen = snapshot(watched_files(options.deck))
    try:
        while server.poll() is None:
            time.sleep(1)
            copies.carry_back_edits()        # before a re-preparation overwrites the copies
            current = snapshot(watched_files(options.deck))
            if current != seen:
                seen = current
                try:
                    copies.prepare()
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
