"""Workspace sessions: who may open a project's sandboxed server, and the audit of each session.

The hub's spawner (:mod:`enclave.hub.spawner`) calls these functions and nothing else to
decide: :func:`open_workspace` at every spawn, :func:`stop_reason` at every poll (a suspended,
revoked, expired or closed project, a withdrawn agreement or an expired accreditation stops the
server), :func:`close_workspace` when a server stops, and :func:`record_download_attempts` for
what the sandboxed server refused to serve. The rule is the one policy module's
``use_project_data`` (a researcher, member of the active project, with the current data-use
agreement accepted and a valid accreditation) plus a published extract to mount at ``/data``.
Each decision and its audit event are written in one transaction; a denial is audited too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import workflow as projects
from enclave.core import audit, people, policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.core.settings import Settings
from enclave.provisioning.models import Extract
from enclave.sandbox.disk import USAGE_MAX_ENTRIES, disk_usage
from output_control.review.workflow import outputs_dir

#: Audit actions of workspace sessions.
SPAWNED = "workspace.spawned"
SPAWN_DENIED = "workspace.spawn_denied"
STOPPED = "workspace.stopped"
DOWNLOAD_REFUSED = "workspace.download_refused"
#: Kinds of refused access a sandboxed server reports (see enclave.sandbox.server_guard).
DOWNLOAD_KINDS = frozenset({"files", "nbconvert", "contents", "symlink", "upload"})
#: At most this many refused attempts are audited one by one per report; the rest are counted.
MAX_ATTEMPTS_PER_REPORT = 100
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,26}")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Workspace:
    """What a workspace server of ``username`` on ``project_id`` sees: the three folders."""

    username: str
    project_id: str
    extract_dir: Path
    extract_version: int
    work_dir: Path
    outputs_dir: Path


def work_dir(settings: Settings, project_id: str, username: str) -> Path:
    """``projects/<p>/work/<username>``: the person's own writable folder in the project."""
    if not _PROJECT_ID.fullmatch(project_id or "") or not _USERNAME.fullmatch(username or ""):
        raise ValidationError(f"no work folder for {username!r} in {project_id!r}: the names "
                              "must be plain project ids and usernames")
    return settings.projects_dir / project_id / "work" / username


def _current_extract(session: Session, project_id: str) -> Extract | None:
    return session.execute(select(Extract).where(
        Extract.project_id == project_id, Extract.status == "published")
        .order_by(Extract.version.desc()).limit(1)).scalar()


def _known_project(session: Session, project_id: str) -> str | None:
    """``project_id`` if such a project exists (audit events link to real projects only)."""
    if not _PROJECT_ID.fullmatch(project_id or ""):
        return None
    try:
        return projects.get_project(session, project_id).id
    except NotFound:
        return None


def _denial(session: Session, username: str, project_id: str) -> str | None:
    """Why ``username`` may not have a workspace on ``project_id`` now (None: they may)."""
    if not _PROJECT_ID.fullmatch(project_id or ""):
        return f"{project_id!r} is not a project id (a workspace is named after its project)"
    try:
        actor = people.actor_for(session, username)
        known = projects.facts(session, project_id)
    except NotFound as exc:
        return str(exc)
    try:
        policy.check_use_project_data(actor, known["members"], known["agreed"], known["active"])
    except PermissionDenied as exc:
        return str(exc)
    if _current_extract(session, project_id) is None:
        return f"project {project_id} has no published extract yet"
    return None


def open_workspace(enclave: Enclave, username: str, project_id: str, *,
                   server_name: str = "") -> Workspace:
    """Decide a spawn and audit it; raise :class:`PermissionDenied` (audited) when refused."""
    with enclave.db.transaction() as session:
        reason = _denial(session, username, project_id)
        if reason is not None:
            audit.record(session, actor=username[:100] or "?", action=SPAWN_DENIED,
                         object_type="workspace", object_id=f"{username}/{project_id}"[:200],
                         project_id=_known_project(session, project_id),
                         details={"reason": reason, "server_name": server_name[:100]})
        else:
            extract = _current_extract(session, project_id)
            if extract is None:  # pragma: no cover - checked by _denial just above
                raise PermissionDenied(f"project {project_id} has no published extract yet")
            workspace = Workspace(username, project_id, Path(extract.path), extract.version,
                                  work_dir(enclave.settings, project_id, username),
                                  outputs_dir(enclave.settings, project_id))
            audit.record(session, actor=username, action=SPAWNED, object_type="workspace",
                         object_id=f"{username}/{project_id}", project_id=project_id,
                         details={"extract_version": extract.version,
                                  "server_name": server_name[:100]})
    if reason is not None:
        raise PermissionDenied(reason)
    return workspace


def stop_reason(enclave: Enclave, username: str, project_id: str) -> str | None:
    """Why a running workspace must stop now (None: it may go on). Reads only."""
    with enclave.db.sessions() as session:
        return _denial(session, username, project_id)


#: A project's disk use is measured at most this often (its workspaces share the figure).
DISK_MEASURE_SECONDS = 5.0
_disk_cache: dict[str, tuple[float, int | None]] = {}
_disk_lock = threading.Lock()


def project_disk_usage(settings: Settings, project_id: str) -> int | None:
    """Bytes held by the project's work folders (everyone's) and outputs; None: too many files.

    Measured by walking the folders (this machine's filesystem has no project quotas), at most
    every :data:`DISK_MEASURE_SECONDS` per project.
    """
    if not _PROJECT_ID.fullmatch(project_id or ""):
        raise ValidationError(f"{project_id!r} is not a project id")
    now = time.monotonic()
    with _disk_lock:
        cached = _disk_cache.get(project_id)
        if cached is not None and now - cached[0] < DISK_MEASURE_SECONDS:
            return cached[1]
    used = disk_usage((settings.projects_dir / project_id / "work",
                       outputs_dir(settings, project_id)))
    with _disk_lock:
        _disk_cache[project_id] = (time.monotonic(), used)
    return used


def disk_stop_reason(enclave: Enclave, project_id: str, limit_bytes: int) -> str | None:
    """Why the project's workspaces must stop for disk use (None: within ``limit_bytes``)."""
    if limit_bytes <= 0:
        return None
    used = project_disk_usage(enclave.settings, project_id)
    if used is None:
        return (f"disk limit: the project's /work and /outputs hold more than "
                f"{USAGE_MAX_ENTRIES} files")
    if used > limit_bytes:
        return (f"disk limit: the project's /work and /outputs hold {used // 1048576} MiB, "
                f"over its limit of {limit_bytes // 1048576} MiB")
    return None


def still_allowed(enclave: Enclave, username: str, project_id: str) -> bool:
    """True if ``username`` may still have a workspace on ``project_id``."""
    return stop_reason(enclave, username, project_id) is None


def close_workspace(enclave: Enclave, username: str, project_id: str, *,
                    reason: str = "stopped") -> None:
    """Audit that a workspace server stopped, and why (stopped, culled, policy, crashed)."""
    with enclave.db.transaction() as session:
        audit.record(session, actor=username[:100] or "?", action=STOPPED,
                     object_type="workspace", object_id=f"{username}/{project_id}"[:200],
                     project_id=_known_project(session, project_id),
                     details={"reason": reason[:500]})


def _clean_attempt(raw: Mapping[str, Any]) -> dict[str, str] | None:
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in DOWNLOAD_KINDS:
        return None
    out = {"kind": kind}
    for key in ("path", "detail", "at"):
        value = raw.get(key, "")
        out[key] = value[:300] if isinstance(value, str) else ""
    return out


def record_download_attempts(enclave: Enclave, username: str, project_id: str,
                             attempts: Iterable[Mapping[str, Any]]) -> int:
    """Audit what a sandboxed server refused to serve; return how many events were written.

    The server cannot reach the database (it has no network and no secret): it appends one
    JSON line per refusal to a file the hub reads (see :mod:`enclave.hub.spawner`). Lines are
    untrusted input: unknown kinds are counted as malformed, fields are truncated, and beyond
    :data:`MAX_ATTEMPTS_PER_REPORT` only a count is recorded.
    """
    cleaned: list[dict[str, str]] = []
    malformed = extra = 0
    for raw in attempts:
        item = _clean_attempt(raw) if isinstance(raw, Mapping) else None
        if item is None:
            malformed += 1
        elif len(cleaned) < MAX_ATTEMPTS_PER_REPORT:
            cleaned.append(item)
        else:
            extra += 1
    if not cleaned and not malformed and not extra:
        return 0
    written = 0
    with enclave.db.transaction() as session:
        for item in cleaned:
            audit.record(session, actor=username, action=DOWNLOAD_REFUSED,
                         object_type="workspace", object_id=f"{username}/{project_id}",
                         project_id=project_id, details=item)
            written += 1
        if malformed or extra:
            audit.record(session, actor=username, action=DOWNLOAD_REFUSED,
                         object_type="workspace", object_id=f"{username}/{project_id}",
                         project_id=project_id,
                         details={"kind": "summary", "not_itemised": extra,
                                  "malformed_lines": malformed})
            written += 1
    return written


@dataclass(frozen=True)
class WorkspaceChoice:
    """A project of the person's, as the hub's home page lists it."""

    project_id: str
    title: str
    status: str
    denial: str | None


def workspace_choices(enclave: Enclave, username: str) -> list[WorkspaceChoice]:
    """The person's projects, each with the reason a workspace is refused (None: it opens)."""
    with enclave.db.sessions() as session:
        try:
            actor = people.actor_for(session, username)
        except NotFound:
            return []
        return [WorkspaceChoice(p.id, p.title, p.status, _denial(session, username, p.id))
                for p in projects.projects_of(session, actor)]
