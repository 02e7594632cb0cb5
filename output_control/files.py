"""File primitives for outputs: atomic durable writes and bounded, symlink-refusing reads."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from anonymization.atomic import write_atomic
from output_control.exceptions import OutputRejected

__all__ = ["read_limited", "strict_json", "write_atomic"]


def strict_json(data: bytes) -> Any:
    """Parse researcher-written JSON (UTF-8), refusing duplicate keys and NaN/Infinity, which
    Python's parser accepts but which make a record mean two things; raises ValueError (or
    UnicodeDecodeError, RecursionError) naming the problem."""
    return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                      parse_constant=_no_constant)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


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
