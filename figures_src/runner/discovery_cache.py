"""The discovery cache: what reading each figure script and project file gave (its FIGURES, its
imports, its import-time code, its code hash), kept in .figure-staging/discover-cache.json under
the file's content digest, so a no-op `make figures` parses nothing. discover.py, reach.py and
mechinterp/models/sources.py compute the values; a change to any drops every entry.

    CACHE.get("imports", path, lambda: ...)   # the cached value, or computed and kept
    CACHE.save()                               # written atomically when something was added
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from figures_src.runner.paths import STAGING_ROOT
from mechinterp.atomic_file import write_atomic
from mechinterp.models import sources

CACHE_FILE = STAGING_ROOT / "discover-cache.json"


class DiscoveryCache:
    """What reading a file gave, kept in CACHE_FILE under its path and content digest, so a no-op
    `make figures` parses nothing (parsing and walking every script and engine file is most of
    its time). Entries are dropped when the code computing them changes, or their file is gone."""

    def __init__(self, path: Path):
        self.path, self.data, self.dirty = path, None, False

    def _version(self) -> list:
        computing = [Path(__file__).with_name(name) for name in ("discover.py", "reach.py")]
        return [_stamp(path) for path in [*computing, Path(sources.__file__)]]

    def _load(self) -> dict:
        if self.data is None:
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.data = {}
            if self.data.get("version") != self._version():
                self.data = {"version": self._version()}
        return self.data

    def get(self, kind: str, path: Path, compute):
        """The cached value for this file, or compute() (stored when it succeeds)."""
        entries = self._load().setdefault(kind, {})
        key, stamp = str(path.resolve()), _stamp(path)
        if key in entries and entries[key][0] == stamp:
            return entries[key][1]
        value = compute()
        try:  # what a later run loads, so every run sees the same types (tuples become lists)
            value = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            return value  # not JSON (bytes in a declaration): used, never cached
        entries[key] = [stamp, value]
        self.dirty = True
        return value

    def save(self) -> None:
        """Write atomically, without entries whose file is gone; a failure only costs speed."""
        if not self.dirty:
            return
        for kind in ("scripts", "imports", "declares", "on_import", "code"):
            entries = self.data.get(kind, {})
            for key in [k for k in entries if not os.path.exists(k)]:
                del entries[key]
        with contextlib.suppress(OSError, TypeError, ValueError):
            write_atomic(self.path, json.dumps(self.data))
            self.dirty = False


def _stamp(path: Path) -> str:
    """The file's content digest (cheap next to parsing it; a size and mtime could miss an edit)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


CACHE = DiscoveryCache(CACHE_FILE)
