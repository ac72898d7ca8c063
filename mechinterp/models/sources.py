"""Content hashes of files and values, and the source files a Python module is made of.

Deciding what is stale must stay fast and must not import torch, so nothing here does:

    file_hash(Path("models/x/checkpoint.safetensors"))   # sha256, cached on path, size, mtime
    code_hash(Path("my_nets/tiny.py"))   # sha256 of the code alone: comments, layout, docstrings left out
    value_hash({"steps": 10})                             # sha256 of canonical JSON
    module_sources("my_nets.tiny")   # {Path("my_nets/tiny.py"): root, ...}: the file and what it
                                     # imports from the same project (never site-packages or stdlib)

A module's project is the sys.path folder it was found in; its imports are followed only into
files under that same folder, so a user's package that imports torch and its own helpers depends
on its helpers and not on torch. all_imports() is the one reader of a tree's imports (the figure
runner's reach.py uses it too).
"""
from __future__ import annotations

import ast
import hashlib
import json
import sys
import sysconfig
from pathlib import Path
from typing import Callable, Iterable

_file_hashes: dict[tuple[str, int, int], str] = {}
_imports: dict[tuple[str, int, int], set[str]] = {}
_code_hashes: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (cached on path, size and mtime within one process)."""
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def code_hash(path: str | Path) -> str:
    """sha256 of a Python file's syntax tree without docstrings: an edit to a comment, a docstring
    or the layout keeps it, any change to what the code does changes it (the file's bytes' hash
    when it does not parse). Cached on path, size and mtime within one process."""
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _code_hashes:
        _code_hashes[key] = _code_hash(path)
    return _code_hashes[key]


def _code_hash(path: str | Path) -> str:
    try:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return file_hash(path)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def value_hash(value) -> str:
    """sha256 of a JSON-able value in canonical form (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def import_modules(node: ast.Import | ast.ImportFrom, package: list[str]) -> set[str]:
    """Absolute module names one import statement may load ("a.b" and "a.b.name" for from-imports;
    the caller keeps the ones that are files)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        parent = package[: len(package) - node.level + 1]
        base = ".".join(parent + ([base] if base else []))
    return {name for name in {base} | {f"{base}.{alias.name}" for alias in node.names} if name}


def all_imports(tree: ast.AST, package: list[str]) -> set[str]:
    """Every module the code under `tree` may import, at any depth (function-level imports too)."""
    return {module for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
            for module in import_modules(node, package)}


def _installed_roots() -> set[Path]:
    """Folders of the interpreter's own and installed packages: never the user's project."""
    paths = sysconfig.get_paths()
    return {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}


def project_roots() -> list[Path]:
    """The sys.path folders a user's own modules can come from, in import order."""
    installed = _installed_roots()
    roots = []
    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        if folder.is_dir() and folder not in installed and folder not in roots:
            roots.append(folder)
    return roots


def module_file(module: str, root: Path) -> Path | None:
    """root/a/b.py or root/a/b/__init__.py for module "a.b", if that file exists."""
    relative = Path(*module.split("."))
    for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def find_module(module: str, roots: list[Path] | None = None) -> tuple[Path, Path] | None:
    """(file, project root) of a module found in the user's own folders, without importing it."""
    for root in roots if roots is not None else project_roots():
        found = module_file(module, root)
        if found:
            return found, root
    return None


def _package_parts(module: str, path: Path) -> list[str]:
    parts = module.split(".")
    return parts if path.name == "__init__.py" else parts[:-1]


def _imported_by(path: Path, module: str) -> set[str]:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _imports:
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):  # still hashed; building it reports the error
            tree = ast.Module(body=[], type_ignores=[])
        _imports[key] = all_imports(tree, _package_parts(module, path))
    return _imports[key]


def top_level_names(root: Path) -> set[str]:
    """The modules and packages a folder offers at its top level ({"my_lab", "helpers"})."""
    return {path.stem for path in root.glob("*.py")} | {path.parent.name for path in root.glob("*/__init__.py")}


def module_sources(modules: str | Iterable[str], root: Path, exclude=frozenset(),
                   imports: Callable[[Path, str], Iterable[str]] = _imported_by,
                   locate: Callable[[str, Path], Path | None] = module_file) -> list[Path]:
    """The files under `root` of `modules` and every file under `root` they import, transitively
    (package __init__ files too, since importing a.b.c runs a/__init__ and a/b/__init__); files
    in `exclude` are neither listed nor followed. The figure runner passes its cached readers of
    a file's imports (`imports(path, module)`) and of where a module is (`locate`)."""
    seen: set[Path] = set()
    pending = [modules] if isinstance(modules, str) else sorted(modules)
    tops, looked = top_level_names(root), set()   # torch, numpy...: never looked for
    while pending:
        parts = pending.pop().split(".")
        names = {".".join(parts[:depth]) for depth in range(1, len(parts) + 1)} - looked
        looked |= names
        for name in sorted(names) if parts[0] in tops else ():
            found = locate(name, root)
            if found and found not in seen and found not in exclude:
                seen.add(found)
                pending.extend(imports(found, name))
    return sorted(seen)
