"""The figures one deck shows, and `make slides DECK=x`'s first step: make only those.

A deck shows a figure when a slide of it, or of a page it imports, has an image under
/figures/<family>/<name>.<ext> or a `<Measured fig="family/name">` (code is ignored, as in
references.py). Hidden slides (`hide:`/`disabled:`) do not count: Slidev never loads them.

    python -m decktools.figures talk/workshop.md --profile quick --device cpu   # runner options
    python -m decktools.figures talk/workshop.md --list                         # what is stale

The runner (figures_src.runner.run) makes the stale ones among them; a figure id that no script
declares is reported with the deck's file:line and the nearest declared id, and nothing is made
(exit 2; exit 1 is the runner's "figures failed": make slides still builds the deck with their
previous outputs, decktools/build.py). With --check-first (make slides), the deck's errors that
no figure can fix (citations, the bib, durations, themes, open code fences) come first: they are
reported and nothing is made (exit 2), instead of failing the build after the figures.
A figure script that does not parse stops only the decks that may show its figures: when the other
scripts declare every figure the deck shows, the runner warns and builds them (figures_src/runner/
cli.py); otherwise the unknown ids and the script's file:line are reported, and nothing is made.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from decktools import references
from decktools.check import check_deck, figure_id_problems
from decktools.markdown import Deck, DeckError, read_deck
from decktools.problems import counted, errors
from figures_src import runner
from figures_src.runner import FigureSpecError, UnreadableScriptError, discover_figures


def deck_figure_ids(deck: Deck) -> list[str]:
    """Every figure id the deck's visible slides (imports included) show, in order of first use."""
    return list(dict.fromkeys(figure_id for _, figure_id in references.figures(deck.shown())))


def deck_errors_first(deck_path: Path) -> int:
    """make slides: the deck's errors that no figure can fix (citations, the bib, durations, themes,
    open code fences) are reported before any figure is made, not after minutes of figures."""
    failed = errors(check_deck(deck_path, figures=False).problems)
    for problem in failed:
        print(problem, file=sys.stderr)
    if failed:
        print(f"slides: {deck_path} fails the check ({counted(len(failed), 'error')} above); no figure was "
              "made: fix them and run make slides again", file=sys.stderr)
    return 2 if failed else 0


def make_deck_figures(deck_path: Path, runner_argv: list[str], check_first: bool = False) -> int:
    """Check the deck's figure ids against the scripts, then run the runner on them."""
    options = runner.parse_args(runner_argv)
    if check_first and deck_errors_first(deck_path):
        return 2
    unreadable = []    # scripts that do not parse: the runner warns about them if the deck builds
    try:
        deck = read_deck(deck_path)
        declared = discover_figures(options.scripts_dir, runner.REPO_ROOT)
    except UnreadableScriptError as error:
        declared, unreadable = error.found, error.problems
    except (DeckError, FigureSpecError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = figure_id_problems(deck, set(declared))
    for problem in problems:
        print(problem, file=sys.stderr)
    for problem in unreadable if problems else []:
        print(f"error: {problem}; it may declare the figures above", file=sys.stderr)
    if problems:
        return 2     # 1 is the runner's: figures failed, their previous outputs kept (make slides builds)
    ids = deck_figure_ids(deck)
    print(f"figures: {deck_path} shows {counted(len(ids), 'figure')}")
    return runner.run(options, ids)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make slides", description=__doc__.split("\n")[0])
    parser.add_argument("deck", type=Path)
    parser.add_argument("--check-first", action="store_true",
                        help="first check the deck's citations and other errors no figure can fix (make slides)")
    options, runner_argv = parser.parse_known_args(argv)
    with runner.stop_signals_handled():
        try:
            return make_deck_figures(options.deck, runner_argv, options.check_first)
        except KeyboardInterrupt:
            print("\ninterrupted: before any figure was started; nothing was changed", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
