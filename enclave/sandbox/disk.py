"""Disk use of a workspace's folders, measured the same way by the hub and by the server.

The machine's filesystem (ext4 without the ``project`` feature) has no project quotas, so the
per-project limit on ``/work`` and ``/outputs`` is enforced by measuring: the hub's poll stops
a project's workspaces when its folders hold more than the limit (audited), and the server's
contents API refuses a save that would go over (:mod:`enclave.sandbox.server_guard`).
Standard library only: the server imports it inside the sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

#: A walk stops after this many entries, and then counts as over the limit (``None``): millions
#: of small files exhaust inodes and would make every poll slow.
USAGE_MAX_ENTRIES = 200_000


def disk_usage(roots: Iterable[str | os.PathLike[str]],
               max_entries: int = USAGE_MAX_ENTRIES) -> int | None:
    """Bytes allocated under ``roots`` (symlinks not followed, hard links once), or None when
    there are more than ``max_entries`` entries (too many to count: treated as over)."""
    seen: set[tuple[int, int]] = set()
    total = entries = 0
    stack = [os.fspath(r) for r in roots if os.path.isdir(r)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entries > max_entries:
                        return None
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total
