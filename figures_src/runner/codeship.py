"""The project's code, shipped to Dask workers that share nothing with the runner but the network.

The runner packs the files it itself imports (mechinterp/ and figures_src/: git's tracked files
plus the untracked ones git does not ignore, as they are in the working tree; not the figure
scripts, whose text each task carries) and the speaker's own modules that figures and zoo
architectures import (my_nets/tiny_attn.py: the caller lists them, cluster.own_modules) into
one tar, named by its identity: the HEAD commit when all of it is committed, `<commit>+dirty.<digest>`
when any file has uncommitted changes, is untracked or ignored, or lies outside the checkout (so
what runs remotely is exactly what the runner hashed for staleness, and a worker that imported
an older copy of a speaker's module is refused, never used; the manifest's engine_commit still
says +dirty). CodePlugin carries the tar to every
worker once (a Dask worker plugin, kept by the scheduler for workers that join later), unpacks it
into a per-code cache folder ($MECHINTERP_WORKER_CACHE, default <tmp>/mechinterp-worker-cache)
and puts that folder first on the worker's sys.path, so the worker imports figures_src.runner.remote
from it. This module imports only the standard library and distributed: it travels by value.

    bundle = code_bundle(REPO_ROOT)            # CodeBundle(code_id, archive bytes)
    client.register_plugin(CodePlugin(bundle.code_id, bundle.archive))
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

SHIPPED_FOLDERS = ("mechinterp", "figures_src")
CODE_ID_FILE = "CODE_ID"      # inside an unpacked copy: the identity it was shipped as
CACHE_ENV = "MECHINTERP_WORKER_CACHE"


@dataclass(frozen=True)
class CodeBundle:
    code_id: str      # "<commit>" or "<commit>+dirty.<digest>"
    archive: bytes    # an uncompressed tar of SHIPPED_FOLDERS and the speaker's own modules,
                      # deterministic for equal files


def _git(repo_root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=30, check=True).stdout


def shipped_files(repo_root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the shipped folders, as they are on disk."""
    listed = _git(repo_root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                  *SHIPPED_FOLDERS).split("\0")
    return sorted({name for name in listed if name and (repo_root / name).is_file()})


def pack(files: dict[str, Path]) -> bytes:
    """A tar of {name in the tar: file} with fixed owners and times, so equal files give equal bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in sorted(files.items()):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def in_checkout(repo_root: Path, files: dict[str, Path]) -> list[str] | None:
    """The files' paths relative to the checkout, or None when one lies outside it."""
    root = repo_root.resolve()
    paths = [path.resolve() for path in files.values()]
    if not all(path.is_relative_to(root) for path in paths):
        return None
    return [path.relative_to(root).as_posix() for path in paths]


def code_bundle(repo_root: Path, figure_scripts: set[str] = frozenset(),
                own: dict[str, Path] | None = None) -> CodeBundle:
    """The runner's code and the speaker's modules (`own`: {name on the worker's path: file}) as
    they are now, named by commit, and by digest when anything is uncommitted. The figure scripts
    are left out: each task carries its own script's text, so editing one changes no worker's code."""
    try:
        commit = _git(repo_root, "rev-parse", "HEAD").strip()[:12]
        files = {name: repo_root / name for name in shipped_files(repo_root) if name not in figure_scripts}
        files.update({name: path for name, path in (own or {}).items() if name not in files})
        checked = in_checkout(repo_root, files)
        # --ignored: an ignored file is no part of the commit, so it must name the code by digest
        dirty = checked is None or _git(repo_root, "status", "--porcelain", "--ignored", "--", *checked).strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"error: the cluster needs {repo_root} to be a git checkout, to name the "
                         f"code it ships to workers ({error})") from None
    archive = pack(files)
    digest = hashlib.sha256(archive).hexdigest()[:12]
    return CodeBundle(f"{commit}+dirty.{digest}" if dirty else commit, archive)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "mechinterp-worker-cache")


def unpack(code_id: str, archive: bytes) -> Path:
    """The folder holding this code on this machine: unpacked once, renamed into place whole."""
    folder = cache_root() / "code" / code_id
    if (folder / CODE_ID_FILE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{code_id}."))
    with tarfile.open(fileobj=io.BytesIO(archive)) as contents:
        # the "data" filter refuses absolute paths and links out of the folder (Python >= 3.11.4)
        contents.extractall(partial, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (partial / CODE_ID_FILE).write_text(code_id)
    try:
        os.rename(partial, folder)
    except OSError:  # another worker on this machine unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def put_first_on_path(folder: Path) -> None:
    entry = str(folder)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


class CodePlugin(WorkerPlugin):
    """Ships one code bundle to each worker once; idempotent, so registering it again for the
    same code (the next `make figures`) sends nothing."""
    idempotent = True

    def __init__(self, code_id: str, archive: bytes):
        self.code_id, self.archive = code_id, archive
        self.name = f"mechinterp-code-{code_id}"

    def setup(self, worker) -> None:
        put_first_on_path(unpack(self.code_id, self.archive))
