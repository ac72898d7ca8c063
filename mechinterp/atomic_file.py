"""The one atomic file write of the repository: readers see the old file or the new one, never half.

    write_atomic(path, "text")      # str is written as UTF-8
    write_atomic(path, b"bytes")

The data goes to a temporary file in the same folder (a rename is atomic only within one file
system), which is flushed and fsynced before os.replace puts it in place; the folder is then fsynced
where the platform allows, so the rename itself survives a crash. If anything fails the temporary
file is removed and the previous file at `path` is untouched. The engine, the figure runner and
decktools (through the runner package's API) all write through it. Nothing here imports torch.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` to `path` all at once: temp file beside it, flush, fsync, rename, fsync folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some platforms (Windows) and file systems cannot open a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
