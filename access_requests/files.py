"""Files that follow the fate of a database transaction (protocols, extract deletion).

A file is published by the row that records its SHA-256, so a file written before the commit
is invisible until then; :func:`on_outcome` removes it again if the transaction rolls back, and
runs deletions only once the change that orders them has committed.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from enclave.core.files import sha256_file


def on_outcome(session: Session, *, committed: Callable[[], None] | None = None,
               rolled_back: Callable[[], None] | None = None) -> None:
    """Run ``committed`` after the session's transaction commits, or ``rolled_back`` after it
    rolls back; whichever comes first, once."""
    done = False

    def _commit(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if committed is not None:
                committed()

    def _rollback(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if rolled_back is not None:
                rolled_back()

    event.listen(session, "after_commit", _commit)
    event.listen(session, "after_rollback", _rollback)


def inventory(folder: Path, relative_to: Path) -> list[dict[str, object]]:
    """Every regular file under ``folder``: path (relative), size and SHA-256, sorted."""
    if not folder.is_dir():
        return []
    out: list[dict[str, object]] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out.append({"path": str(path.relative_to(relative_to)), "size": path.stat().st_size,
                        "sha256": sha256_file(path)})
    return out


def remove_tree(folder: Path) -> None:
    """Delete a folder and everything in it, read-only files included; absent is fine."""
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        folder.unlink()
        return

    for sub in [folder, *folder.rglob("*")]:
        if sub.is_dir() and not sub.is_symlink():
            os.chmod(sub, stat.S_IRWXU)
    shutil.rmtree(folder)
