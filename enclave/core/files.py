"""Atomic, durable file writes (the one implementation lives in the pure library) and hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from anonymization.atomic import fsync_folder, write_atomic

__all__ = ["fsync_dir", "sha256_bytes", "sha256_file", "write_atomic"]


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` durable."""
    fsync_folder(path)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as lowercase hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of bytes, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()
