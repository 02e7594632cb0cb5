"""Atomic file output: a file appears whole under its final name, or not at all.

The project rule (DESIGN.md, "Files are written atomically"): write to a temp file in the
destination folder, fsync it, rename it over the destination with `os.replace` (atomic on
POSIX within one file system), then fsync the folder so the rename survives a crash. On any
error, including an interrupt, the temp file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "fsync_folder", "write_atomic"]


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path (mode 0600, same folder as `dst`) that replaces `dst` on success.

    The caller writes and closes the temp file inside the ``with`` block; the temp file is
    hidden (its name starts with a dot) and ends with ``.tmp``.
    """
    target = Path(dst)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        _fsync(temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_folder(target.parent)


def write_atomic(dst: str | os.PathLike[str], data: bytes, mode: int = 0o640) -> None:
    """Write ``data`` to ``dst`` atomically and durably, leaving the file with ``mode``."""
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as temp:
        temp.write_bytes(data)
        os.chmod(temp, mode)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_folder(folder: Path) -> None:
    """Make the rename durable; a platform that cannot open a folder skips this step."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
