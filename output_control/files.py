"""File primitives for outputs: atomic durable writes and bounded, symlink-refusing reads."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from output_control.exceptions import OutputRejected


def write_atomic(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Write to a temp file beside ``path``, fsync, then rename: readers see nothing or all."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # directory fsync is unsupported on some filesystems
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_limited(path: Path, max_bytes: int, what: str) -> bytes:
    """Read a regular file of at most ``max_bytes``; a symlink, a missing or oversize file is
    rejected, since a workspace could point an output at data it must not release."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        if path.is_symlink():
            raise OutputRejected(f"the {what} {path.name!r} is a symbolic link")
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise OutputRejected(f"the {what} {path.name!r} is missing") from None
    except OSError as exc:
        raise OutputRejected(f"the {what} {path.name!r} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OutputRejected(f"the {what} {path.name!r} is not a regular file")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OutputRejected(f"the {what} {path.name!r} is larger than {max_bytes} bytes")
    return data
