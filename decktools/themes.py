"""Whether the deck's `theme:` and `addons:` are installed, resolved as Slidev 52 resolves them.

Slidev (@slidev/cli, createResolver in its resolver module) reads the headmatter's `theme`:
"none" (or `theme: null`) is no theme; a missing theme is "default"; `/abs`, `./rel`, `../rel`
or any name with a "/" that is not a scoped package is a folder (`@/x` is relative to the deck's
folder); a bare name NAME is the package @slidev/theme-NAME, then slidev-theme-NAME, then NAME; a
full package name (`@scope/x`, `slidev-theme-x`) is itself. Packages are found in node_modules
beside the deck or in a folder above it. Addons resolve the same way with `addon` for `theme`.
Without the package, `slidev build` only says it cannot prompt for installation; this says which
line names it, what is installed, and what to do. A deck with no node_modules above it is not
checked here: the build itself says to run `make node`.
"""
from __future__ import annotations

import re
from pathlib import Path

from decktools.markdown import Deck
from decktools.problems import Problem

SAFE_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9-~][a-z0-9-._~]*/)?[a-z0-9-~][a-z0-9-._~]*$")  # Slidev's own
RETIRED_ADDONS = {"slidev-addon-citations"}   # prepare.py drops it: citations are rendered at build time


def node_modules_dirs(deck_folder: Path) -> list[Path]:
    """node_modules in the deck's folder and each folder above, nearest first (Node's lookup)."""
    folders = [deck_folder, *deck_folder.resolve().parents]
    return [folder / "node_modules" for folder in folders if (folder / "node_modules").is_dir()]


def candidates(name: str, kind: str) -> list[str]:
    """The package names Slidev tries for a theme or addon name, in its order."""
    if "/" in name or name.startswith(("@", f"slidev-{kind}-")):    # a full package name already
        return [name]
    return [f"@slidev/{kind}-{name}", f"slidev-{kind}-{name}", name]


def is_folder_name(name: str) -> bool:
    return name.startswith(("/", ".", "@/")) or (not name.startswith("@") and "/" in name)


def installed(kind: str, modules: list[Path]) -> list[str]:
    """The short names of the themes (or addons) installed in those node_modules."""
    names = set()
    for folder in modules:
        names.update(p.name.removeprefix(f"{kind}-") for p in folder.glob(f"@slidev/{kind}-*"))
        names.update(p.name.removeprefix(f"slidev-{kind}-") for p in folder.glob(f"slidev-{kind}-*"))
        names.update(f"{p.parent.name}/{p.name}" for p in folder.glob(f"@*/slidev-{kind}-*"))
    return sorted(names)


def resolution_problem(name: str, kind: str, deck_folder: Path, modules: list[Path]) -> str | None:
    """Why Slidev would not find this theme or addon; None when it would."""
    if kind == "theme" and name == "none":
        return None
    if is_folder_name(name):
        folder = deck_folder / name[2:] if name.startswith("@/") else deck_folder / name
        return None if folder.is_dir() else f"{kind} folder {name!r} not found (looked for {folder}): fix the path"
    if not SAFE_PACKAGE_NAME.match(name):
        return f"{kind} {name!r} is not a valid npm package name: fix the name"
    packages = candidates(name, kind)
    if any((folder / package / "package.json").is_file() for folder in modules for package in packages):
        return None
    have = installed(kind, modules)
    listed = f"use one of {', '.join(have)}, or " if have else ""
    shown = packages[:2] if len(packages) > 1 else packages     # a bare NAME as a package is rare
    return (f"{kind} {name!r} is not installed ({modules[0]} has no {' or '.join(shown)}): {listed}add it to "
            f"{modules[0].parent / 'package.json'} and run make node")


def headmatter_line(entry: Path, key: str, value: str | None = None) -> int:
    """The line of `key:` in the entry's headmatter (of `- value` under it when given); 1 if not found."""
    lines = entry.read_text(encoding="utf-8").split("\n")
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), len(lines))
    found = next((i for i in range(1, close) if re.match(rf"{key}\s*:", lines[i])), None)
    if found is None:
        return 1
    if value is not None:
        found = next((i for i in range(found, close) if value in lines[i]), found)
    return found + 1


def theme_problems(deck: Deck) -> list[Problem]:
    """An error at the headmatter line of each theme or addon Slidev would not find."""
    modules = node_modules_dirs(deck.entry.parent)
    if not modules:
        return []
    theme = deck.headmatter.get("theme", "default")
    wanted = [("theme", "none" if theme is None else str(theme or "default"), None)]
    addons = deck.headmatter.get("addons")
    wanted += [("addon", str(a), str(a)) for a in addons if a not in RETIRED_ADDONS] if isinstance(addons, list) else []
    problems = []
    for kind, name, item in wanted:
        if message := resolution_problem(name, kind, deck.entry.parent, modules):
            line = headmatter_line(deck.entry, "theme" if kind == "theme" else "addons", item)
            problems.append(Problem(deck.entry, line, 1, message))
    return problems
