"""Planning a run: which declared figures are selected, which of them are stale and why, and
which zoo models must be rebuilt first. Nothing here starts a figure.

    selected = select(specs, options, figure_ids)          # ids, or an error message
    errors = unknown_models(specs, selected, models_dir)   # {id: a model name zoo.yaml lacks}
    stale, errors = plan({i: specs[i] for i in selected}, options, manifest, figures_dir)

A figure that names a model models/zoo.yaml has no entry for (and that nobody put in models/ by
hand) is refused here, when the zoo is read, with the script's line and the nearest zoo names:
no `make models` could build a misspelt model.
"""
from __future__ import annotations

import fnmatch
import sys
from collections import Counter
from pathlib import Path

from figures_src.runner.discover import FigureSpec
from figures_src.runner.paths import REPO_ROOT
from figures_src.runner.staleness import (ZOO_CONFIG, Manifest, MissingModelError, figure_inputs,
                                          model_checkpoint, record_builds, stale_reason)
from mechinterp.models.config import ZooError, in_profile, read_zoo
from mechinterp.models.failures import shown_path
from mechinterp.names import did_you_mean


def matches(figure_id: str, patterns: list[str]) -> bool:
    """True if no patterns, or the id matches a glob, equals one, or contains it."""
    if not patterns:
        return True
    return any(fnmatch.fnmatch(figure_id, p) or p in figure_id for p in patterns)


def select(specs: dict[str, FigureSpec], options, figure_ids) -> list[str] | str:
    """The ids to consider, or an error message: figure_ids (None: all figures the profile
    makes, see FigureSpec.made_in) filtered by --only."""
    if figure_ids is None:
        figure_ids = [i for i, spec in specs.items() if spec.made_in(options.profile)]
    else:
        unknown = [i for i in figure_ids if i not in specs]
        if unknown:
            return "; ".join(f"no figure script declares {i!r}{did_you_mean(i, specs)}" for i in unknown)
    selected = [i for i in dict.fromkeys(figure_ids) if matches(i, options.only)]
    if options.only and not selected:
        return f"no figure id matches {options.only}; known ids: {', '.join(sorted(specs))}"
    return selected


UNKNOWN_MODEL = "its FIGURES entry ("     # how the reason for a declared model the zoo lacks starts


def unknown_models(specs: dict[str, FigureSpec], selected: list[str], models_dir: Path) -> dict[str, str]:
    """{figure id: what to fix} for the selected figures that declare a model the zoo has no entry
    for and that has no checkpoint placed by hand in models_dir/<name>/ either."""
    config = models_dir / ZOO_CONFIG
    if not config.is_file():
        return {}   # models placed by hand only: staleness names a missing one
    try:
        zoo = read_zoo(config)
    except ZooError:
        return {}   # build_stale_models reports a zoo.yaml that cannot be read
    known, zoo_file = set(zoo.entries) | set(zoo.problems), shown_path(str(config))
    problems = {}
    for figure_id in selected:
        spec = specs[figure_id]
        unknown = [m for m in spec.models if m not in known and not placed_by_hand(m, models_dir)]
        if unknown:
            problems[figure_id] = (
                f"{UNKNOWN_MODEL}{shown_path(str(spec.script))}:{spec.line}) declares model "
                f"{unknown[0]!r}, which {zoo_file} has no entry for{did_you_mean(unknown[0], known)}: "
                f"fix the name in its \"models\", or add the model to {zoo_file}")
    return problems


def placed_by_hand(name: str, models_dir: Path) -> bool:
    """True for a model someone put in models_dir/<name>/ themselves (the runner reads those too)."""
    try:
        return bool(model_checkpoint(name, models_dir))
    except MissingModelError:
        return False


def plan(specs: dict[str, FigureSpec], options, manifest: Manifest, figures_dir: Path):
    """Split the selected figures into (stale: [(spec, inputs, reason)], errors: {id: message})."""
    stale, errors = [], {}
    for figure_id, spec in specs.items():
        if not matches(figure_id, options.only):
            continue
        try:
            inputs = figure_inputs(spec, options.profile, REPO_ROOT, options.models_dir)
        except FileNotFoundError as error:
            errors[figure_id] = str(error)
            continue
        reason = "forced" if options.force else stale_reason(spec, inputs, manifest, figures_dir,
                                                              options.models_dir)
        if reason:
            stale.append((spec, inputs, reason))
    return stale, errors


def longest_first(stale, manifest: Manifest):
    """The stale figures in the order that ends soonest on a few workers: the longest first, by the
    seconds each took when it was last made (so a 40 s figure does not start last and leave the
    other workers idle); figures never made, whose cost is unknown, first, in declared order."""
    def last_seconds(item) -> float:
        entry = manifest.figures.get(item[0].figure_id, {})
        return float(entry.get("seconds", float("inf")))
    return sorted(stale, key=lambda item: -last_seconds(item))


def profile_change_line(stale, manifest: Manifest, profile: str) -> str | None:
    """One line for a profile switch, instead of the same reason on every figure."""
    before = Counter(manifest.figures[spec.figure_id].get("inputs", {}).get("profile")
                     for spec, _, _ in stale if spec.figure_id in manifest.figures)
    before.pop(profile, None)
    if not before:
        return None
    count = sum(before.values())
    return (f"figures: profile changed from {' and '.join(sorted(map(str, before)))} to {profile}: "
            f"{count} figure{'s' if count != 1 else ''} stale")


def build_stale_models(specs: dict[str, FigureSpec], selected: list[str], options) -> dict[str, str]:
    """Before figures run, let the zoo rebuild the stale models the selected figures read (its
    checkpoint, architecture source, entry or dataset changed); return {figure id: which model
    could not be built} (the zoo printed why, once per model). Torch is imported only to build."""
    from mechinterp.models.inputs import stale_models
    config = options.models_dir / ZOO_CONFIG
    readers = {figure_id: specs[figure_id].models for figure_id in selected}
    try:
        zoo = read_zoo(config) if config.is_file() else None
        wanted = sorted({m for names in readers.values() for m in in_this_profile(names, zoo, options.profile)})
        stale = stale_models(wanted, zoo, options.models_dir) if zoo is not None else {}
        if not stale:
            return {}
        if getattr(options, "cluster", ""):   # CLUSTER=: trained there, like the figures
            from figures_src.runner.zoo_cluster import build_on_cluster
            failures = build_on_cluster(config, options, sorted(stale))
        else:
            from mechinterp.models.zoo import train_zoo_models
            failures = train_zoo_models(config, options.models_dir, sorted(stale), options.device,
                                        options.jobs)
        record_builds(options.models_dir, zoo, sorted(stale), failures)   # staleness says so after
    except ZooError as error:
        print(f"zoo: {error}", file=sys.stderr)
        failures = {name: str(error) for names in readers.values() for name in names}
    first_failed = {figure_id: next((n for n in names if n in failures), None) for figure_id, names in readers.items()}
    return {figure_id: f"its model {name!r} could not be built (the zoo's message above)"
            for figure_id, name in first_failed.items() if name}


def in_this_profile(names: list[str], zoo, profile: str) -> list[str]:
    """The models a run of `profile` builds: an entry marked `profiles: [full]` is not trained for a
    quick run (the figure's quick params do not read it); all of them without a zoo."""
    return [name for name in names if zoo is None or in_profile(zoo.entries.get(name, {}), profile)]


def models_to_read(spec: FigureSpec, options) -> list[str]:
    """The declared models a figure must read in this run (the worker's check_all_read): those its
    profile builds; every declared one when zoo.yaml is missing or broken (its own message)."""
    config = options.models_dir / ZOO_CONFIG
    try:
        return in_this_profile(spec.models, read_zoo(config) if config.is_file() else None, options.profile)
    except ZooError:
        return list(spec.models)


def unread_zoo_problems(specs: dict[str, FigureSpec], selected: list[str], options) -> list[str]:
    """A note for each broken zoo entry that no selected figure reads (the figures that read one
    fail with its block), so that a mistake in zoo.yaml is never silent."""
    config = options.models_dir / ZOO_CONFIG
    read = {name for figure_id in selected for name in specs[figure_id].models}
    try:
        zoo = read_zoo(config) if config.is_file() else None
    except ZooError as error:
        return [] if read else [f"zoo: {error}"]
    return [f"zoo: note, read by no figure of this run: {zoo.problem_block(name)}"
            for name in (zoo.problems if zoo else {}) if name not in read]
