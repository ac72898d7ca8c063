"""The one atomic write (mechinterp/atomic_file.py): the content arrives whole, a failed write
leaves the previous file as it was and no temporary file behind, and every writer uses it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mechinterp.atomic_file import write_atomic

REPO = Path(__file__).resolve().parent.parent


def test_text_and_bytes_arrive_whole_and_replace_the_old_file(tmp_path):
    target = tmp_path / "deeper" / "notes.json"           # a missing folder is made
    write_atomic(target, "first ünïcode\n")
    assert target.read_bytes() == "first ünïcode\n".encode("utf-8")
    payload = bytes(range(256)) * 4096                    # 1 MiB, every byte value
    write_atomic(target, payload)
    assert target.read_bytes() == payload
    assert sorted(p.name for p in target.parent.iterdir()) == ["notes.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_file_gets_the_permissions_a_plain_write_gives_and_keeps_its_execute_bits(tmp_path, umask):
    """Not mkstemp's private 0o600: a built site must be readable by a web server running as
    another user. Each umask in a fresh process, compared with what open() gives there."""
    script = textwrap.dedent(f"""
        import os, stat, sys
        os.umask({umask:#o})
        from mechinterp.atomic_file import write_atomic
        folder = sys.argv[1]
        write_atomic(os.path.join(folder, "site.html"), "<html/>")
        open(os.path.join(folder, "plain.html"), "w").close()
        os.chmod(os.path.join(folder, "kept.sh"), 0o750)
        write_atomic(os.path.join(folder, "kept.sh"), "echo")
        print(*(oct(stat.S_IMODE(os.stat(os.path.join(folder, n)).st_mode)) for n in ("site.html", "plain.html", "kept.sh")))
    """)
    (tmp_path / "kept.sh").write_text("old")            # 0o750 before: rwx for its owner, r-x for the group
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            check=True, cwd=REPO)
    site, plain, kept = result.stdout.split()
    assert site == plain == oct(0o666 & ~umask) and kept == oct((0o666 & ~umask) | 0o110)


def test_data_that_cannot_be_written_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text("previous")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "lone surrogate \ud800")
    with pytest.raises(TypeError):
        write_atomic(target, {"not": "bytes"})
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    """A real failure halfway through the data: the file-size limit (RLIMIT_FSIZE) stops the
    write after 64 KiB of a 1 MiB payload with EFBIG, in a child process so pytest keeps its limits."""
    target = tmp_path / "checkpoint.bin"
    target.write_bytes(b"old checkpoint")
    child = textwrap.dedent(f'''
        import resource, signal, sys
        from mechinterp.atomic_file import write_atomic
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an OSError instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        try:
            write_atomic({str(target)!r}, b"x" * (1 << 20))
        except OSError as error:
            print("failed:", error.errno)
            sys.exit(0)
        sys.exit("the write did not fail")
    ''')
    result = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("failed:")
    assert target.read_bytes() == b"old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.bin"]


def test_the_runner_api_gives_decktools_the_same_function():
    from figures_src import runner
    assert runner.write_atomic is write_atomic


def test_no_other_module_writes_a_temp_file_and_renames_it():
    """One implementation: no NamedTemporaryFile or mkstemp outside mechinterp/atomic_file.py."""
    writers = []
    for folder in ("mechinterp", "figures_src", "decktools", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text()
            if path.name != "atomic_file.py" and ("NamedTemporaryFile(" in text or "mkstemp(" in text):
                writers.append(str(path.relative_to(REPO)))
    assert writers == []
