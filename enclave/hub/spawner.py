"""The workspace spawner seam: until the bubblewrap sandbox lands, spawning is refused.

Deny by default: no unsandboxed server is ever started. The workspaces issue replaces this
class with the sandboxed, per-project named-server spawner.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.spawner import Spawner
from tornado import web


class SandboxNotAvailableSpawner(Spawner):
    """Refuses every spawn with an explanation; never starts a process."""

    async def start(self) -> Any:
        """Refuse: workspaces run only inside the enclave's sandbox."""
        raise web.HTTPError(
            503, "Les espaces de travail isolés ne sont pas encore disponibles dans cette "
                 "version (Sandboxed workspaces are not available yet in this version).")

    async def stop(self, now: bool = False) -> None:
        """Nothing runs, so nothing to stop."""

    async def poll(self) -> int | None:
        """Never running."""
        return 0
