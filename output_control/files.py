"""File primitives for outputs: atomic durable writes and bounded, symlink-refusing reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from anonymization.atomic import write_atomic
from output_control.exceptions import OutputRejected

__all__ = ["read_limited", "write_atomic"]


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
