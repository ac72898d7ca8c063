"""The one atomic file write of the repository: readers see the old file or the new one, never half.

    write_atomic(path, "text")      # str is written as UTF-8
    write_atomic(path, b"bytes")

The data goes to a temporary file in the same folder (a rename is atomic only within one file
system), which is flushed and fsynced before os.replace puts it in place; the folder is then fsynced
where the platform allows, so the rename itself survives a crash. If anything fails the temporary
file is removed and the previous file at `path` is untouched. The new file gets the permissions an
ordinary write would give it (the umask's, and the old file's execute bits), not mkstemp's 0o600. The engine, the figure runner and
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
        os.chmod(handle, _mode_for(path))
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _mode_for(path: Path) -> int:
    """The permissions a plain open() would give (0o666 less the umask), keeping an existing
    file's execute bits. mkstemp makes its file private (0o600), which a web server running as
    another user cannot read (a built site), nor a colleague's account (a shared checkpoint); files
    an earlier version wrote so are opened up again on their next write."""
    executable = 0
    with contextlib.suppress(OSError):
        executable = path.stat().st_mode & 0o111
    return (0o666 & ~PROCESS_UMASK) | executable


def _read_umask() -> int:
    """The process's umask: Linux states it in /proc; elsewhere set and restore it (at import,
    before any thread of ours could create a file under a zero umask)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


PROCESS_UMASK = _read_umask()


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some platforms (Windows) and file systems cannot open a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
