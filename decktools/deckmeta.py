"""What presenter mode shows beside each slide: its time budget and where its figures came from.

prepare writes talk/public/deck-meta/<deck>.json; the presenter-only panel (talk/custom-nav-controls.vue)
reads it. For every slide: number (as the built deck numbers it, decktools.numbering), title,
planned seconds. For every generated figure on a slide
(an image under /figures/, or a <Measured fig=...> number):
the script and function that made it, the models it read with their checkpoint hashes, the input
hash, device, seconds, engine commit, time, where it ran (worker address, host, device: a Dask
worker or this machine's local pool), the command that regenerates it, and whether its
inputs have changed since (stale). Staleness is computed now, with the runner's own rules (a
model's inputs as the zoo defines them: entry, dataset, checkpoint, architecture source).
"""
from __future__ import annotations

from pathlib import Path

from decktools import references
from decktools.markdown import Deck
from decktools.numbering import numbered_slides
from decktools.rehearse import plan_deck
from figures_src.runner import (FigureSpecError, Manifest, UnreadableScriptError, discover_figures,
                                figure_inputs, stale_reason, unknown_models)

REPO_ROOT = Path(__file__).resolve().parent.parent
NOT_DECLARED = "no script declares it any more"


def meta_path(deck_path: Path) -> Path:
    """Where prepare writes the deck's presenter metadata (the build counts its slides there)."""
    return deck_path.parent / "public" / "deck-meta" / f"{deck_path.stem}.json"


def figures_on_slides(deck: Deck, works: int = 0) -> dict[int, list[str]]:
    """{slide number: [figure ids shown on it]}: its images under /figures/ and the figures its
    <Measured> numbers come from; numbered as the built deck is (decktools.numbering)."""
    shown: dict[int, list[str]] = {}
    for numbered in numbered_slides(deck, works):
        ids = [figure_id for _, figure_id in references.figures(Deck(deck.entry, deck.headmatter, [numbered.slide]))]
        if ids and numbered.page == 1:
            shown[numbered.number] = list(dict.fromkeys(ids))
    return shown


def declared_specs(scripts_dir: Path, repo_root: Path = REPO_ROOT) -> dict:
    """The figures the scripts declare; those of the readable scripts when one does not parse
    (the figures step and make check say so), none when a declaration is refused."""
    try:
        return discover_figures(scripts_dir, repo_root)
    except UnreadableScriptError as error:
        return error.found
    except FigureSpecError:
        return {}


def failed_on_same_inputs(figure_ids, figures_dir: Path) -> dict[str, str]:
    """{figure id: error} for the ids whose last run (a forced one: FORCE=1) failed with the very
    inputs its recorded outputs were made from: those outputs are current, but the run failed."""
    manifest = Manifest.load(figures_dir / "manifest.json")
    return {figure_id: failed["error"] for figure_id in sorted(figure_ids)
            if (failed := manifest.failed.get(figure_id)) and figure_id in manifest.figures
            and failed.get("input_hash") == manifest.figures[figure_id]["inputs"]["input_hash"]}


def stale_reasons(figure_ids, figures_dir: Path, models_dir: Path, scripts_dir: Path,
                  repo_root: Path = REPO_ROOT, profile: str | None = None) -> dict[str, str | None]:
    """{figure id: why it is stale, None when current} for the ids the manifest records, by the
    runner's own rules, in `profile` (the one make slides runs: a figure made in another is stale,
    as the runner finds it), or with None in the profile each was made in. Nothing is built."""
    manifest = Manifest.load(figures_dir / "manifest.json")
    specs = declared_specs(scripts_dir, repo_root) if set(figure_ids) & set(manifest.figures) else {}
    reasons = {}
    recorded = sorted(set(figure_ids) & set(manifest.figures))
    # a model the zoo has no entry for: the runner's own message (remaking cannot help)
    unknown = unknown_models(specs, [i for i in recorded if i in specs], models_dir)
    for figure_id in recorded:
        if figure_id not in specs:
            reasons[figure_id] = NOT_DECLARED
            continue
        if figure_id in unknown:
            reasons[figure_id] = unknown[figure_id]
            continue
        try:
            made_in = manifest.figures[figure_id]["inputs"]["profile"]
            inputs = figure_inputs(specs[figure_id], profile or made_in, repo_root, models_dir)
            reasons[figure_id] = stale_reason(specs[figure_id], inputs, manifest, figures_dir, models_dir)
        except FileNotFoundError as error:
            reasons[figure_id] = str(error)
    return reasons


def figure_provenance(figure_ids: set[str], figures_dir: Path, models_dir: Path,
                      scripts_dir: Path = REPO_ROOT / "figures_src") -> dict[str, dict]:
    manifest = Manifest.load(figures_dir / "manifest.json")
    reasons = stale_reasons(figure_ids, figures_dir, models_dir, scripts_dir)
    provenance = {}
    for figure_id in sorted(figure_ids):
        entry = manifest.figures.get(figure_id)
        if entry is None:
            provenance[figure_id] = {"stale": True, "why": "not in the manifest: run make figures"}
            continue
        why = reasons[figure_id]
        provenance[figure_id] = {
            "script": entry["script"], "make": entry["make"], "models": {
                name: (hashes.get("checkpoint") or "")[:12] for name, hashes in entry["inputs"]["models"].items()},
            "input_hash": entry["inputs"]["input_hash"][:12], "profile": entry["inputs"]["profile"],
            "device": entry["device"], "seconds": entry["seconds"], "engine_commit": entry["engine_commit"],
            "time": entry["time"], "command": entry["command"], "stale": why is not None, "why": why,
            "ran_on": entry.get("ran_on")}   # worker, host, device (made before it was recorded: None)
    return provenance


def deck_meta(deck: Deck, figures_dir: Path, models_dir: Path, words_per_minute: float = 130.0,
              works: int = 0) -> dict:
    """The presenter metadata of the (source) deck, its slides numbered as the built deck's with a
    reference list of `works` entries."""
    shown = figures_on_slides(deck, works)
    slides = [{"number": plan.number, "title": plan.title, "budget": round(plan.seconds, 1),
               "section": plan.section, "figures": shown.get(plan.number, [])}
              for plan in plan_deck(deck, words_per_minute, works)]
    figure_ids = {f for ids in shown.values() for f in ids}
    return {"deck": deck.entry.stem, "duration": deck.headmatter.get("duration"), "slides": slides,
            "figures": figure_provenance(figure_ids, figures_dir, models_dir)}
