"""The outputs of figures that no script declares any more, removed with their manifest entries.

A figure's image and numbers are derived from its script: once the speaker deletes the figure from
FIGURES (or the whole script), its files in talk/public/figures/ would otherwise stay, be listed
by the manifest and ship in every built site. Each run drops them, saying which and why. Nothing
is lost that a build could need: a slide that still shows one is already a `make check` error
(no script declares it), and the figure's code is in git. Only a complete reading of the scripts
decides: while one does not parse, the figures it declares are unknown and nothing is removed.

    line = prune_undeclared(options)   # what was removed, or None (--list: what would be)
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from figures_src.runner.discover import FigureSpecError, declared_ids
from figures_src.runner.lock import exclusive_run
from figures_src.runner.staleness import Manifest
from mechinterp.models.failures import shown_path


def undeclared(manifest: Manifest, scripts_dir: Path) -> list[str] | None:
    """The manifest's figure ids that no script in scripts_dir declares; None while a script
    cannot be read (its figures are unknown)."""
    try:
        declared = declared_ids(scripts_dir)
    except (SyntaxError, FigureSpecError, OSError, ValueError):
        return None
    return sorted((set(manifest.figures) | set(manifest.failed)) - set(declared))


def remove_outputs(entry: dict, figures_dir: Path) -> None:
    """Delete a figure's recorded outputs, then its family folder if that is left empty."""
    for output in entry.get("outputs", {}):
        target = figures_dir / output
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):   # not empty: other figures of the family
            target.parent.rmdir()


def remove_undeclared(manifest: Manifest, scripts_dir: Path, figures_dir: Path, dry_run: bool = False) -> str | None:
    """Drop the entries and outputs of figures no script declares (dry_run: only say so); the line
    to print, or None when there are none. The caller holds the figures folder's lock."""
    gone = undeclared(manifest, scripts_dir) or []
    if not gone:
        return None
    where = f"no script in {shown_path(str(scripts_dir))}/ declares them any more"
    if dry_run:
        return f"figures: `make figures` will remove the outputs of {', '.join(gone)}: {where}"
    for figure_id in gone:
        remove_outputs(manifest.figures.pop(figure_id, {}), figures_dir)
        manifest.failed.pop(figure_id, None)
    manifest.save()
    return (f"figures: removed the outputs and manifest entries of {', '.join(gone)}: {where} "
            "(files made by code that was removed: restore its script, from git if it was committed, and "
            "`make figures` makes them again)")


def prune_undeclared(options) -> str | None:
    """The run's step: with --list only say what would go; else remove it under the figures
    folder's lock (taken only when there is something to remove)."""
    manifest_path = options.figures_dir / "manifest.json"
    manifest = Manifest.load(manifest_path)
    if options.list or not undeclared(manifest, options.scripts_dir):
        return remove_undeclared(manifest, options.scripts_dir, options.figures_dir, dry_run=True)
    with exclusive_run(options.figures_dir):
        return remove_undeclared(Manifest.load(manifest_path), options.scripts_dir, options.figures_dir)
