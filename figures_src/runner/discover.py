"""Find the figures that the scripts in figures_src/ declare, without importing them.

A module in the scripts folder is a figure script if and only if it declares FIGURES (helper
modules such as plotting.py simply don't; the runner's own modules live in this package, apart).
Each script's FIGURES dict is read with `ast.literal_eval`. Each figure's dependencies are the part
of its script that its make function reaches (reach.py) and the project files found by following
that part's imports through their own (mechinterp.models.sources.module_sources): the engine's
and the speaker's own packages in the project folder (`from my_lab.data import load`), never an
installed package or the stdlib.
Nothing here imports torch, and what each file gave is cached (discovery_cache.py:
.figure-staging/discover-cache.json, keyed by the file's content digest), so deciding what is
stale stays fast.

A script that does not parse cannot declare anything: discover_figures then raises
UnreadableScriptError, one line per such script (file:line, the code, what to do), carrying the
figures of the scripts that do parse, so a caller that needs only those may go on (cli.py says
which do).

    specs = discover_figures(Path("figures_src"))
    specs["featvis/from-noise"].engine_files   # every project .py it can reach (my_lab/data.py too)
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

from figures_src.runner.discovery_cache import CACHE
from figures_src.runner.reach import all_imports, figure_part, import_time
from mechinterp.models.failures import shown_path
from mechinterp.models.fields import PROFILES   # the zoo's `profiles:` take the same names
from mechinterp.models.sources import code_hash, file_hash, module_file, module_sources, value_hash

GPU_PROFILE = "gpu"      # the full deck plus the figures of models only a GPU trains (GoogLeNet);
                         # its parameters are a figure's "gpu" ones, else its "full" ones
ENGINE_PACKAGES = ("mechinterp", "figures_src")   # the rest of a figure's code is the speaker's
# every figure runs through these (the worker seeds, styles and loads models with them)
RUNNER_MODULES = {"figures_src.runner.context", "figures_src.runner.style", "mechinterp.device"}
# ...but not through the package's __init__ (its API for decktools): editing the command line or
# the planning remakes no figure
NOT_FIGURE_INPUTS = (Path("figures_src", "runner", "__init__.py"),)


class FigureSpecError(ValueError):
    """A figure script whose FIGURES declaration cannot be used; the message names file and line
    (and path, line say them apart, where set)."""

    def __init__(self, message: str, path: Path | None = None, line: int = 0):
        super().__init__(message)
        self.path, self.line = path, line


class UnreadableScriptError(FigureSpecError):
    """Scripts that do not parse, so which figures they declare is unknown; `problems` has one line
    for each, `found` the figures the other scripts declare."""

    def __init__(self, problems: list[str], found: dict):
        super().__init__("\n".join(problems))
        self.problems, self.found = problems, found


def syntax_problem(script: Path, error: SyntaxError) -> str:
    """'figures_src/mylab.py:56: invalid syntax: `def broken(:`; fix ...' for a script that does
    not parse."""
    code = f": `{error.text.strip()}`" if error.text and error.text.strip() else ""
    return (f"{shown_path(str(script))}:{error.lineno}: {error.msg}{code}; fix that line (until the "
            "script parses, the runner cannot read which figures it declares)")


@dataclass
class FigureSpec:
    figure_id: str
    script: Path
    make: str
    models: list[str]
    params: dict
    outputs: list[str]
    engine_files: list[Path] = field(default_factory=list)
    script_source: str = ""      # the part of the script this figure reaches (reach.py)
    resources: dict = field(default_factory=dict)   # what a cluster worker must offer: {"GPU": 1}
    profiles: list[str] | None = None   # the profiles that make it (FIGURES "profiles"); None: all
    line: int = 0                # where its id is written in FIGURES, for messages (script:line)
    import_files: list[Path] = field(default_factory=list)   # project files that importing the
    # script runs the top-level code of, beyond engine_files (hashed: import_time_hash)

    @property
    def family(self) -> str:
        return self.figure_id.split("/", 1)[0]

    def params_for(self, profile: str) -> dict:
        """Per-profile parameters ({"quick": {...}, "full": {...}}) or the same for every profile."""
        if set(self.params) & set(PROFILES):
            fallback = self.params.get("full", {}) if profile == GPU_PROFILE else {}
            return dict(self.params.get(profile, fallback))
        return dict(self.params)

    def made_in(self, profile: str) -> bool:
        """Whether a run of every figure in this profile makes this one."""
        return self.profiles is None or profile in self.profiles


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


def _figures_literal(script: Path, tree: ast.Module | None = None) -> tuple[dict, int]:
    """FIGURES, evaluated from the source alone; module-level literal constants may be used."""
    tree = tree or ast.parse(script.read_text(), filename=str(script))
    names: dict = {}
    for node in tree.body:
        target = _assigned_name(node)
        if target is None:
            continue
        try:
            value = _literal(node.value, names)
        except ValueError as error:
            if target == "FIGURES":
                raise FigureSpecError(f"{shown_path(str(script))}:{node.lineno}: FIGURES must be a literal dict "
                                      f"(strings, numbers, lists, dicts, constants named above): {error}") from None
            continue
        if target == "FIGURES":
            _refuse_later_changes(script, tree, node.lineno)
            return value, node.lineno
        names[target] = value
    return {}, 0


def _assigned_name(node: ast.AST) -> str | None:
    """NAME for a module-level `NAME = value` or `NAME: type = value`, else None."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
        return node.target.id
    return None


MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "append", "extend", "insert", "remove"}


def _root_name(node: ast.AST) -> str | None:
    """'FIGURES' for FIGURES, FIGURES["a/b"] and FIGURES["a/b"]["models"]."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _changes_figures(node: ast.AST) -> bool:
    """An assignment to (or into) FIGURES, a del, or a call such as FIGURES.update(...)."""
    targets = {ast.Assign: lambda n: n.targets, ast.Delete: lambda n: n.targets,
               ast.AugAssign: lambda n: [n.target], ast.AnnAssign: lambda n: [n.target]}
    if type(node) in targets:
        return any(_root_name(target) == "FIGURES" for target in targets[type(node)](node))
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS and _root_name(node.func.value) == "FIGURES")


def _refuse_later_changes(script: Path, tree: ast.Module, line: int) -> None:
    """The runner reads FIGURES from the source, never running the script: a figure added (or a
    declaration changed) after the literal would be silently missing, so it is refused here."""
    later = sorted((node for node in ast.walk(tree) if getattr(node, "lineno", 0) > line and _changes_figures(node)),
                   key=lambda node: node.lineno)
    if later:
        code = ast.unparse(later[0]).split("\n")[0]
        raise FigureSpecError(
            f"{shown_path(str(script))}:{later[0].lineno}: `{code[:60]}{'...' if len(code) > 60 else ''}` changes "
            f"FIGURES after its dict literal (line {line}): the runner reads that literal from the source, "
            "never running the script, so this would be lost; declare every figure inside the one FIGURES "
            "dict literal (constants defined above it may be used)",
            script, later[0].lineno)


def _entry_lines(tree: ast.Module, line: int) -> dict:
    """{figure id: the line of its key} for the ids FIGURES (assigned at `line`) spells out."""
    for node in tree.body:
        if _assigned_name(node) == "FIGURES" and node.lineno == line and isinstance(node.value, ast.Dict):
            return {key.value: key.lineno for key in node.value.keys if isinstance(key, ast.Constant)}
    return {}


def _check_entry(script: Path, line: int, figure_id: str, entry) -> None:
    where = f"{shown_path(str(script))}:{line}: figure {figure_id!r}"
    if not isinstance(entry, dict) or "make" not in entry:
        raise FigureSpecError(f"{where} needs a dict with at least 'make' (the function to call)")
    if figure_id.count("/") != 1 or not all(figure_id.split("/")):
        raise FigureSpecError(f"{where}: ids are 'family/name', e.g. 'featvis/from-noise'")
    unknown = set(entry) - {"make", "models", "params", "outputs", "resources", "profiles"}
    if unknown:
        raise FigureSpecError(f"{where} has unknown keys {sorted(unknown)}; "
                              "allowed: make, models, params, outputs, resources, profiles")
    if not set(entry.get("profiles", PROFILES)) <= set(PROFILES):
        raise FigureSpecError(f"{where}: profiles must be among {', '.join(PROFILES)}")
    missing = missing_param_profiles(entry)
    if missing:
        raise FigureSpecError(f"{where} has params for {', '.join(p for p in PROFILES if p in entry['params'])} "
                              f"but not for {' or '.join(missing)}, which makes it too (`make slides` and `make "
                              f"figures` run full unless PROFILE= says otherwise): add \"{missing[0]}\": {{...}} to "
                              "its params")
    resources = entry.get("resources", {})
    if not (isinstance(resources, dict) and all(isinstance(k, str) and isinstance(v, (int, float)) and v > 0
                                                for k, v in resources.items())):
        raise FigureSpecError(f"{where}: resources must map names to positive numbers, e.g. {{\"GPU\": 1}}")


def missing_param_profiles(entry: dict) -> list[str]:
    """The profiles a figure is made in (FigureSpec.made_in) whose params its per-profile "params"
    lacks (gpu takes full's); [] for params shared by every profile."""
    params = entry.get("params") or {}
    if not (isinstance(params, dict) and set(params) & set(PROFILES)):
        return []
    made_in = entry.get("profiles") or PROFILES
    missing = [profile for profile in PROFILES if profile in made_in and profile not in params]
    # gpu takes full's: one "full" entry fills both
    return [p for p in missing if p != GPU_PROFILE or ("full" not in params and "full" not in missing)]


def _declarations(script: Path) -> dict:
    """{figure id: its entry plus the "source" and "modules" of its part} for one script."""
    text = script.read_text()
    tree = ast.parse(text, filename=str(script))
    figures, line = _figures_literal(script, tree)
    if not isinstance(figures, dict):
        raise FigureSpecError(f"{shown_path(str(script))}:{line}: FIGURES must be a dict of id -> declaration")
    declared, lines = {}, _entry_lines(tree, line)
    on_import = sorted(all_imports(import_time(tree), _package_parts(script)))
    for figure_id, entry in figures.items():
        _check_entry(script, lines.get(figure_id, line), figure_id, entry)
        part = figure_part(text, entry["make"], _package_parts(script), tree)
        declared[figure_id] = {**entry, "source": part.source, "modules": sorted(part.modules),
                               "line": lines.get(figure_id, line), "on_import": on_import}
    return declared


def read_script(script: Path, repo_root: Path) -> list[FigureSpec]:
    """The FigureSpecs one script declares, each with the part of the script and the engine files
    that its own make function reaches (reach.py)."""
    specs = []
    not_inputs = {script, *(repo_root / p for p in NOT_FIGURE_INPUTS)}
    for figure_id, entry in CACHE.get("scripts", script, lambda: _declarations(script)).items():
        engine = reachable_files(set(entry["modules"]) | RUNNER_MODULES, repo_root, exclude=not_inputs)
        specs.append(FigureSpec(figure_id, script, entry["make"], list(entry.get("models", [])),
                                dict(entry.get("params", {})), list(entry.get("outputs", ["png"])),
                                engine, entry["source"], dict(entry.get("resources", {})),
                                entry.get("profiles"), entry["line"],
                                import_time_files(set(entry["on_import"]), repo_root, not_inputs | set(engine))))
    return specs


def figure_scripts(scripts_dir: Path) -> list[Path]:
    """The modules of scripts_dir that declare FIGURES (read from the source, cached)."""
    return [script for script in sorted(scripts_dir.glob("*.py"))
            if CACHE.get("declares", script, lambda: _declares_figures(script))]


def _declares_figures(script: Path) -> bool:
    """True when the module assigns FIGURES at its top level, or might: one that does not parse
    is taken for a script, so that discover_figures reports it."""
    try:
        tree = ast.parse(script.read_text(), filename=str(script))
    except SyntaxError:
        return True
    return any(_assigned_name(node) == "FIGURES" or (isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "FIGURES" for t in node.targets)) for node in tree.body)


def declared_ids(scripts_dir: Path) -> dict[str, Path]:
    """{figure id: script} from the FIGURES literals alone (no reach analysis): what a deck check
    needs, at a fraction of discover_figures' cost. An id two scripts declare is the runner's
    error here too (DuplicateFigureIdError)."""
    found, places = {}, {}
    for script in figure_scripts(scripts_dir):
        tree = ast.parse(script.read_text(), filename=str(script))
        figures, line = _figures_literal(script, tree)
        if not isinstance(figures, dict):
            continue
        lines = _entry_lines(tree, line)
        for figure_id in figures:
            place = (script, lines.get(figure_id, line))
            if figure_id in places:
                raise duplicate_id(figure_id, place, places[figure_id])
            places[figure_id], found[figure_id] = place, script
    return found


class DuplicateFigureIdError(FigureSpecError):
    """Two scripts declare one figure id: no figure can be made until one is renamed."""


def duplicate_id(figure_id: str, copy: tuple[Path, int], first: tuple[Path, int]) -> FigureSpecError:
    """The error for an id two scripts declare, naming both places (script, line) (a copied
    script keeps the original's ids until they are renamed)."""
    family, name = figure_id.split("/", 1)
    return DuplicateFigureIdError(
        f"{copy[0]}:{copy[1]}: figure id {figure_id!r} is also declared at "
        f"{first[0]}:{first[1]}; ids must be unique: give the figures of a copied script ids "
        f"of their own (e.g. {f'my-{family}/{name}'!r}) and cite those in your deck", *copy)


def discover_figures(scripts_dir: Path, repo_root: Path | None = None) -> dict[str, FigureSpec]:
    """All figures declared in scripts_dir/*.py, keyed by id; duplicate ids are an error, and so
    is a script that does not parse (UnreadableScriptError, after reading all the others)."""
    repo_root = repo_root or scripts_dir.resolve().parent
    _module_file.cache_clear()  # files may have appeared or changed since the last discovery
    _imported_modules.cache_clear()
    found: dict[str, FigureSpec] = {}
    unreadable = []
    for script in figure_scripts(scripts_dir):
        try:
            specs = read_script(script, repo_root)
        except SyntaxError as error:   # the others are still read: a caller may need only theirs
            unreadable.append(syntax_problem(script, error))
            continue
        for spec in specs:
            if spec.figure_id in found:
                first = found[spec.figure_id]
                raise duplicate_id(spec.figure_id, (spec.script, spec.line), (first.script, first.line))
            found[spec.figure_id] = spec
    CACHE.save()
    if unreadable:
        raise UnreadableScriptError(unreadable, found)
    return found


@functools.lru_cache(maxsize=None)
def _imported_modules(path: Path) -> frozenset[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    return frozenset(CACHE.get("imports", path, lambda: sorted(
        all_imports(ast.parse(path.read_text(), filename=str(path)), _package_parts(path)))))


def _package_parts(path: Path) -> list[str]:
    """['mechinterp', 'featvis'] for mechinterp/featvis/render.py (walks up through __init__.py)."""
    parts = []
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return parts


def reachable_files(modules: set[str], repo_root: Path, exclude: set[Path] = frozenset()) -> list[Path]:
    """Every file of the project (engine, runner and the speaker's own packages under repo_root;
    never an installed package or the stdlib) that importing `modules` can load."""
    return module_sources(modules, repo_root, exclude, lambda path, _: _imported_modules(path), _module_file)


def import_time_files(modules: set[str], repo_root: Path, exclude: set[Path]) -> list[Path]:
    """The project files whose top-level code importing `modules` runs (following only the imports
    that code makes); files in `exclude` (hashed whole already) are neither listed nor followed."""
    return module_sources(modules, repo_root, exclude, lambda path, _: _import_time(path)[1], _module_file)


def code_file_hash(path: Path) -> str:
    """A reachable project file's hash as a figure input: of its code alone for Python (sources.
    code_hash: a comment, docstring or layout edit remakes no figure), else of its bytes; cached."""
    if path.suffix != ".py":
        return file_hash(path)
    return CACHE.get("code", path, lambda: code_hash(path))


def import_time_hash(path: Path) -> str:
    """The hash of what importing the file runs (reach.import_time): an edit inside a function
    body changes nothing here, a line such as `plt.rcParams[...] = 8` does."""
    return _import_time(path)[0]


def _import_time(path: Path) -> tuple[str, list[str]]:
    """(hash of the file's import-time code, the modules that code imports), cached."""
    def read():
        tree = import_time(ast.parse(path.read_text(), filename=str(path)))
        return [value_hash(ast.unparse(tree)), sorted(all_imports(tree, _package_parts(path)))]
    try:
        return tuple(CACHE.get("on_import", path, read))
    except (SyntaxError, UnicodeDecodeError):   # importing it fails, and says so, in the worker
        return file_hash(path), []


@functools.lru_cache(maxsize=None)
def _module_file(module: str, repo_root: Path) -> Path | None:
    return module_file(module, repo_root)


def engine_dependencies(script: Path, repo_root: Path) -> list[Path]:
    """Every project file that `script` can reach through imports (package __init__s too)."""
    return reachable_files(_imported_modules(script), repo_root, exclude={script})
