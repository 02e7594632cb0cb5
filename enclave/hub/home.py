"""What the hub's home page lists: the person's projects and their workspace servers.

The page (``templates/home.html``) replaces JupyterHub's "My Server" and free-form named
servers: a workspace is named after its project, so the page lists the person's projects, says
why a workspace is closed when the policy refuses it, and offers start, open and stop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from enclave.core.exceptions import EnclaveError
from enclave.workspaces import sessions

TEMPLATES = Path(__file__).resolve().parent / "templates"
_log = logging.getLogger(__name__)


def workspace_rows(user: Any) -> list[dict[str, Any]]:
    """One row per project of ``user`` (a JupyterHub ``User``): title, denial, running, URL."""
    if user is None:
        return []
    from enclave.hub.spawner import hub_enclave

    try:
        choices = sessions.workspace_choices(hub_enclave(), user.name)
    except EnclaveError:
        _log.exception("enclave: cannot list the workspaces of %s", user.name)
        return []
    rows = []
    for choice in choices:
        spawner = user.spawners.get(choice.project_id)  # dict.get: creates no spawner
        rows.append({"project_id": choice.project_id, "title": choice.title,
                     "status": choice.status, "denial": choice.denial,
                     "active": bool(spawner is not None and spawner.active),
                     "url": user.server_url(choice.project_id)})
    return rows
