"""One runner per figures folder: an flock holding our pid, in .figure-staging/locks/ (lock_path).

A second runner would overwrite the first's manifest entries, so a live holder is refused by
name. A lock whose recorded process is dead (something it started kept the descriptor open) is
taken over with a line saying so, and the dead runner's staging folder is removed. The lock lives
outside the figures folder: Slidev copies talk/public/ into every built site, bookkeeping and all.
The old talk/public/figures/.runner.lock is still honoured once (a runner of an older checkout may
hold it), then removed.

    with exclusive_run(figures_dir):
        ...   # make and record figures
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
from pathlib import Path

from figures_src.runner.paths import STAGING_ROOT
from figures_src.runner.signals import INTERRUPTS

OLD_LOCK_NAME = ".runner.lock"   # where it was, inside the figures folder (and so every site)


def lock_path(figures_dir: Path) -> Path:
    """The lock of one figures folder: .figure-staging/locks/figures-<digest of its path>.lock."""
    digest = hashlib.sha256(str(figures_dir.resolve()).encode()).hexdigest()[:16]
    return STAGING_ROOT / "locks" / f"figures-{digest}.lock"


def retire_old_lock(figures_dir: Path) -> None:
    """Refuse while a runner of an older checkout holds figures_dir/.runner.lock; else remove it."""
    old = figures_dir / OLD_LOCK_NAME
    if not old.exists():
        return
    fd = os.open(old, os.O_RDWR)
    _flock_or_dead_holder(fd, figures_dir)
    old.unlink(missing_ok=True)
    os.close(fd)


def _flock_or_dead_holder(fd: int, figures_dir: Path) -> int | None:
    """Take the flock on fd: None when taken, the recorded pid when a dead process's leftover
    holds it; a live holder is refused by name (fd closed)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        holder = _recorded_pid(fd)
    if holder is None or _pid_alive(holder):
        os.close(fd)
        who = f" (process {holder})" if holder else ""
        raise SystemExit(f"error: another `make figures` is writing to {figures_dir}{who}; "
                         "wait for it to finish (or stop it), then run again") from None
    return holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    return False


def _take_over(path: Path, holder: int) -> None:
    print(f"figures: the lock {path} was left by process {holder}, which is no longer running; "
          "taking it over", file=sys.stderr)
    shutil.rmtree(STAGING_ROOT / f"run-{holder}", ignore_errors=True)


def acquire_lock(figures_dir: Path) -> int:
    """An flock on lock_path(figures_dir) with our pid written in it; the open descriptor.
    A lock held for a dead process (something it started kept the descriptor) is replaced by a
    fresh file; a live holder is refused by name."""
    path = lock_path(figures_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        holder = _flock_or_dead_holder(fd, figures_dir)
        if holder is not None:
            if _same_file(fd, path):
                path.unlink()
            os.close(fd)
            _take_over(path, holder)
            continue
        if not _same_file(fd, path):  # replaced by a runner taking over: lock the new file
            os.close(fd)
            continue
        holder = _recorded_pid(fd)
        if holder and holder != os.getpid() and not _pid_alive(holder):
            _take_over(path, holder)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            retire_old_lock(figures_dir)
        except BaseException:
            release_lock(fd)
            raise
        return fd
    raise SystemExit(f"error: could not take the lock {path}; run again")


def release_lock(fd: int) -> None:
    """Clear our pid (so no later run mistakes us for a dead holder) and unlock."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


@contextlib.contextmanager
def exclusive_run(figures_dir: Path):
    """One runner per figures folder: a second would overwrite the first's manifest entries."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    fd = None
    try:
        with INTERRUPTS.deferred():
            fd = acquire_lock(figures_dir)
        yield
    finally:
        if fd is not None:
            release_lock(fd)
