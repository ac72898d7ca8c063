"""What one figure depends on inside its script: the part of the file its make function reaches.

A script declares several figures. Editing one figure's function, or an engine module only that
figure imports, should remake that figure alone and not its neighbours. Starting from the make
function, the names it uses are followed through the script's top-level definitions (functions,
classes, assignments, imports) to a closure. The figure's script input is the source of that
closure plus every statement that runs on import; its engine inputs are the modules the closure
imports (discover follows them into the engine). The reader of a tree's imports is the engine's
mechinterp/models/sources.py, which the zoo uses for an architecture's source files too.

Importing a module runs its top-level code, so that code is an input of every figure of a script
that imports the module, directly or through another module it imports at the top level:
import_time() is that code (function bodies left out: they run only when called, and a figure
that calls one reaches the whole module through its closure anyway).

The reading is conservative: a name counts whether or not the line that uses it ever runs, and a
script that looks names up dynamically (globals(), eval, exec, importlib) gives every figure the
whole file. FIGURES counts only for a figure whose code reads it (each figure's own entry is hashed
anyway, as its params and models).

    part = figure_part(source_text, "make_from_noise", package=["figures_src"])
    part.source      # the text whose hash is the figure's script input
    part.modules     # {"mechinterp.featvis.render", ...}
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from mechinterp.models.sources import all_imports  # noqa: F401  (the one reader of imports; discover uses it)

DYNAMIC_NAMES = {"globals", "locals", "vars", "eval", "exec", "__import__", "importlib"}
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class FigurePart:
    source: str            # the reached top-level statements, in file order
    modules: set[str]      # absolute names of the modules those statements import


def assigned_names(node: ast.stmt) -> set[str] | None:
    """Names a plain assignment (x = ..., a, b = ..., x: T = ...) binds; None for anything else,
    such as plt.rcParams[...] = ..., which changes shared state instead of defining a name."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = set()
    for target in targets:
        elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(element, ast.Name) for element in elements):
            return None
        names.update(element.id for element in elements)
    return names


def bound_names(node: ast.stmt) -> set[str]:
    """The module-level names a top-level definition binds (empty for other statements)."""
    if isinstance(node, DEFINITIONS):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return assigned_names(node) or set()


def runs_for_every_figure(node: ast.stmt) -> bool:
    """Top-level code that defines nothing runs on import, so every figure depends on it
    (the docstring and the `if __name__ == "__main__":` block excepted)."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return False
    if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
        return False
    return not bound_names(node)


def used_names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def closure(tree: ast.Module, start: str) -> list[ast.stmt] | None:
    """Top-level statements reached from the definition named `start` (None: it is not defined)."""
    definers: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        for name in bound_names(node):
            definers.setdefault(name, []).append(node)
    if start not in definers:
        return None
    reached = [node for node in tree.body if runs_for_every_figure(node)]
    pending = [name for node in reached for name in used_names(node)] + [start]
    seen_names: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen_names:
            continue
        seen_names.add(name)
        for node in definers.get(name, []):
            if node not in reached:
                reached.append(node)
                pending.extend(used_names(node))
    return sorted(reached, key=first_line)


def figure_part(text: str, make: str, package: list[str], tree: ast.Module | None = None) -> FigurePart:
    """The source and imported modules that the figure made by function `make` depends on."""
    tree = tree or ast.parse(text)
    reached = closure(tree, make)
    if reached is None or any(used_names(node) & DYNAMIC_NAMES for node in reached):
        return FigurePart(text, all_imports(tree, package))
    modules = set().union(*(all_imports(node, package) for node in reached))
    lines = text.splitlines()
    source = "\n".join("\n".join(lines[first_line(node) - 1:node.end_lineno]) for node in reached)
    return FigurePart(source, modules)


def first_line(node: ast.stmt) -> int:
    """Where a statement's text starts: its first decorator, if it has any."""
    return min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])


ACTIVE = (ast.Call, ast.Attribute, ast.Subscript, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)


class _FunctionBodies(ast.NodeTransformer):
    """Leaves out what importing a module runs to no effect on a figure that does not reach it:
    function bodies, docstrings and names bound to plain values (another script's FIGURES); a
    def's decorators, defaults and annotations, class bodies and every call stay."""

    def visit_FunctionDef(self, node):
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        node.body = [ast.Pass()]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Expr(self, node):
        return None if isinstance(node.value, ast.Constant) else node

    def visit_Assign(self, node):
        plain = assigned_names(node) is not None and node.value is not None
        return None if plain and not any(isinstance(n, ACTIVE) for n in ast.walk(node.value)) else node

    visit_AnnAssign = visit_Assign


def import_time(tree: ast.Module) -> ast.Module:
    """The code that importing the module runs (its text: ast.unparse; its imports: all_imports)."""
    stripped = _FunctionBodies().visit(copy.deepcopy(tree))
    return ast.fix_missing_locations(stripped)
