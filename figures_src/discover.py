"""Find the figures that the scripts in figures_src/ declare, without importing them.

Each script's FIGURES dict is read with `ast.literal_eval`, and the engine files a script depends
on are found by following its `import mechinterp...` statements through the engine's own imports.
Nothing here imports torch, so deciding what is stale stays fast.

    specs = discover_figures(Path("figures_src"))
    specs["featvis/from-noise"].engine_files   # every mechinterp/*.py it can reach
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

NOT_FIGURE_SCRIPTS = {"__init__", "context", "discover", "staleness", "runner", "style", "provenance"}
PROFILES = ("quick", "full")


class FigureSpecError(ValueError):
    """A figure script whose FIGURES declaration cannot be used; the message names file and line."""


@dataclass
class FigureSpec:
    figure_id: str
    script: Path
    make: str
    models: list[str]
    params: dict
    outputs: list[str]
    engine_files: list[Path] = field(default_factory=list)

    @property
    def family(self) -> str:
        return self.figure_id.split("/", 1)[0]

    def params_for(self, profile: str) -> dict:
        """Per-profile parameters ({"quick": {...}, "full": {...}}) or the same for every profile."""
        if set(self.params) & set(PROFILES):
            return dict(self.params.get(profile, {}))
        return dict(self.params)


def _literal(node: ast.AST, names: dict):
    """Evaluate a literal expression that may name earlier module-level constants and unpack
    dicts ({**BASE, "steps": 10}); anything else (calls, attributes, arithmetic) is refused."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"{node.id!r} is not a literal constant defined above FIGURES")
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal(element, names) for element in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Dict):
        result = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                result.update(_literal(value, names))
            else:
                result[_literal(key, names)] = _literal(value, names)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand, names)
    raise ValueError(f"line {node.lineno}: {type(node).__name__} is not a literal")


def _figures_literal(script: Path) -> tuple[dict, int]:
    """FIGURES, evaluated from the source alone; module-level literal constants may be used."""
    tree = ast.parse(script.read_text(), filename=str(script))
    names: dict = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        target = node.targets[0].id
        try:
            value = _literal(node.value, names)
        except ValueError as error:
            if target == "FIGURES":
                raise FigureSpecError(f"{script}:{node.lineno}: FIGURES must be a literal dict "
                                      f"(strings, numbers, lists, dicts, constants named above): {error}") from None
            continue
        if target == "FIGURES":
            return value, node.lineno
        names[target] = value
    return {}, 0


def _check_entry(script: Path, line: int, figure_id: str, entry) -> None:
    where = f"{script}:{line}: figure {figure_id!r}"
    if not isinstance(entry, dict) or "make" not in entry:
        raise FigureSpecError(f"{where} needs a dict with at least 'make' (the function to call)")
    if figure_id.count("/") != 1 or not all(figure_id.split("/")):
        raise FigureSpecError(f"{where}: ids are 'family/name', e.g. 'featvis/from-noise'")
    unknown = set(entry) - {"make", "models", "params", "outputs"}
    if unknown:
        raise FigureSpecError(f"{where} has unknown keys {sorted(unknown)}; "
                              "allowed: make, models, params, outputs")


def read_script(script: Path, repo_root: Path) -> list[FigureSpec]:
    """The FigureSpecs one script declares (engine files filled in)."""
    figures, line = _figures_literal(script)
    if not isinstance(figures, dict):
        raise FigureSpecError(f"{script}:{line}: FIGURES must be a dict of id -> declaration")
    engine_files = engine_dependencies(script, repo_root)
    specs = []
    for figure_id, entry in figures.items():
        _check_entry(script, line, figure_id, entry)
        specs.append(FigureSpec(figure_id, script, entry["make"], list(entry.get("models", [])),
                                dict(entry.get("params", {})), list(entry.get("outputs", ["png"])),
                                engine_files))
    return specs


def discover_figures(scripts_dir: Path, repo_root: Path | None = None) -> dict[str, FigureSpec]:
    """All figures declared in scripts_dir/*.py, keyed by id; duplicate ids are an error."""
    repo_root = repo_root or scripts_dir.resolve().parent
    found: dict[str, FigureSpec] = {}
    for script in sorted(scripts_dir.glob("*.py")):
        if script.stem in NOT_FIGURE_SCRIPTS or script.stem.startswith("_"):
            continue
        for spec in read_script(script, repo_root):
            if spec.figure_id in found:
                raise FigureSpecError(f"{script}: figure id {spec.figure_id!r} is also declared in "
                                      f"{found[spec.figure_id].script}; ids must be unique")
            found[spec.figure_id] = spec
    return found


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_parts(path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name}


def _package_parts(path: Path) -> list[str]:
    """['mechinterp', 'featvis'] for mechinterp/featvis/render.py (walks up through __init__.py)."""
    parts = []
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return parts


def _module_file(module: str, repo_root: Path) -> Path | None:
    relative = Path(*module.split("."))
    for candidate in (repo_root / relative.with_suffix(".py"), repo_root / relative / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def engine_dependencies(script: Path, repo_root: Path, packages=("mechinterp", "figures_src")) -> list[Path]:
    """Every file of our own packages that `script` can reach through imports (package __init__s too)."""
    seen: set[Path] = set()
    pending = [script]
    while pending:
        current = pending.pop()
        for module in _imported_modules(current):
            if module.split(".")[0] not in packages:
                continue
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                found = _module_file(".".join(parts[:depth]), repo_root)
                if found and found not in seen and found != script:
                    seen.add(found)
                    pending.append(found)
    return sorted(seen)
