"""A project's life after approval: suspension, reinstatement, revocation, expiry and closure.

Moves that close access (suspend, revoke, expire, close) never wait for a fresh view: they
apply to whatever the project is now, under its row lock, so a racing approval can never
leave access open. Moves that open access (reinstate) carry the version the staff member saw
and are refused if the project changed meanwhile. Closure deletes the extract folders,
destroys the project's keys through the key store and records a certificate of destruction
in the audit chain, in the transaction that closes the project; the folders are deleted once
that transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import validation
from access_requests.files import inventory, on_outcome, remove_tree
from access_requests.machine import PROJECT_MACHINE, ProjectStatus, facts
from access_requests.models import Project
from access_requests.moves import advance, check_version, locked_project
from enclave.core import audit, policy
from enclave.core.db import Database, utcnow
from enclave.core.keystore import KeyStore
from enclave.core.policy import SYSTEM, Actor
from enclave.provisioning.models import Extract
from output_control.review.pseudonym_index import INDEX_FOLDER, remove_indexes

S = ProjectStatus
#: Statuses that expire at the end date.
EXPIRING = (S.APPROVED, S.ACTIVE, S.SUSPENDED)


def _reason(reason: str, required: bool) -> str:
    return validation.text("reason", reason, max_len=5000, min_len=1 if required else 0,
                           multiline=True)


def _move(session: Session, actor: Actor, project_id: str, target: ProjectStatus, *,
          reason: str, version: int | None, fresh_view: bool) -> Project:
    project = locked_project(session, project_id)
    policy.check_transition(actor, PROJECT_MACHINE, S(project.status), target,
                            facts(session, project_id))
    if fresh_view:
        check_version(f"project {project_id}", project.version, version)
    details: dict[str, Any] = {"seen_version": version} if version is not None else {}
    advance(session, actor, project, target, reason=reason, details=details)
    return project


def suspend(session: Session, actor: Actor, project_id: str, *, reason: str,
            version: int | None = None) -> Project:
    """Suspend an active project now (a reason is required; ``version`` is only recorded)."""
    return _move(session, actor, project_id, S.SUSPENDED, reason=_reason(reason, True),
                 version=version, fresh_view=False)


def revoke(session: Session, actor: Actor, project_id: str, *, reason: str,
           version: int | None = None) -> Project:
    """Revoke an approved, active or suspended project now (a reason is required)."""
    return _move(session, actor, project_id, S.REVOKED, reason=_reason(reason, True),
                 version=version, fresh_view=False)


def reinstate(session: Session, actor: Actor, project_id: str, *, version: int,
              reason: str = "", require_reason: bool = False) -> Project:
    """Reinstate a suspended project; refused if it changed since ``version`` was read.

    ``require_reason``: the edges that ask staff for a reason (the portal, the API) make it
    mandatory, so that every reopening of access says why.
    """
    return _move(session, actor, project_id, S.ACTIVE, reason=_reason(reason, require_reason),
                 version=version, fresh_view=True)


def expire_due(db: Database, *, today: date | None = None) -> list[str]:
    """Expire every approved, active or suspended project whose end date has passed.

    The end date is the last day of access: a project expires on the day after. Called by the
    hub's timer or cron as the system; running it again expires nothing more (idempotent).
    Each project expires in its own transaction, so one failure does not hold back the rest.
    """
    today = today or date.today()
    with db.sessions() as session:
        due = list(session.execute(select(Project.id).where(
            Project.status.in_([s.value for s in EXPIRING]), Project.end_date < today)
            .order_by(Project.end_date, Project.id)).scalars())
    expired = []
    for project_id in due:
        with db.transaction() as session:
            project = locked_project(session, project_id)
            if project.status not in EXPIRING or project.end_date >= today:
                continue  # moved or extended meanwhile
            advance(session, SYSTEM, project, S.EXPIRED,
                    reason=f"end date {project.end_date.isoformat()} reached",
                    extra_facts={"today": today})
            expired.append(project_id)
    return expired


@dataclass(frozen=True)
class DestructionCertificate:
    """What closing a project destroyed: files with their hashes, key ids, when and by whom."""

    project_id: str
    closed_by: str
    closed_at: str
    reason: str
    extract_versions: tuple[int, ...]
    files: tuple[dict[str, Any], ...]
    key_ids: tuple[str, ...]
    audit_seq: int  # the certificate's event in the audit chain


def close_project(session: Session, keys: KeyStore, actor: Actor, project_id: str, *,
                  reason: str = "", version: int | None = None,
                  require_reason: bool = False) -> DestructionCertificate:
    """Close a project: extract deleted, keys destroyed, certificate of destruction audited.

    The folders of every extract version are listed with their SHA-256 before anything is
    destroyed and deleted once the transaction commits (a rollback deletes nothing); run
    :func:`finish_pending_destruction` after a crash between the commit and the deletion.
    """
    project = locked_project(session, project_id)
    policy.check_transition(actor, PROJECT_MACHINE, S(project.status), S.CLOSED,
                            facts(session, project_id))
    reason = _reason(reason, require_reason)
    extracts = list(session.execute(select(Extract).where(
        Extract.project_id == project_id, Extract.status == "published")
        .order_by(Extract.version)).scalars())
    folders = [Path(e.path) for e in extracts]
    # The output checks' pseudonym index (beside the version folders) lists the project's
    # pupils' pseudonyms: it is certified and destroyed with the extracts.
    roots = sorted({folder.parent for folder in folders})
    indexes = [root / INDEX_FOLDER for root in roots
               if (root / INDEX_FOLDER).is_dir() and not (root / INDEX_FOLDER).is_symlink()]
    files = [entry for folder in (*folders, *indexes)
             for entry in inventory(folder, folder.parent.parent)]
    key_ids = keys.destroy_project_keys(session, project_id, actor,
                                        reason or "project closed")
    for extract in extracts:
        extract.status = "deleted"
    details: dict[str, Any] = {"seen_version": version} if version is not None else {}
    advance(session, actor, project, S.CLOSED, reason=reason, details=details)
    closed_at = utcnow().isoformat()
    versions = tuple(e.version for e in extracts)
    event = audit.record(session, actor=actor.username, action="project.destruction_certified",
                         object_type="destruction_certificate", object_id=project_id,
                         project_id=project_id, details={
                             "format": "enclave-destruction-certificate/1",
                             "project": project_id, "closed_by": actor.username,
                             "closed_at": closed_at, "reason": reason,
                             "extract_versions": list(versions), "files": files,
                             "key_ids": key_ids})

    def _delete() -> None:
        for folder in folders:
            remove_tree(folder)
        for root in roots:
            remove_indexes(root)

    on_outcome(session, committed=_delete)
    return DestructionCertificate(project_id, actor.username, closed_at, reason, versions,
                                  tuple(files), tuple(key_ids), event.seq)


def finish_pending_destruction(db: Database) -> list[str]:
    """Delete extract folders left on disk by closed projects (after a crash); idempotent."""
    with db.sessions() as session:
        paths = list(session.execute(select(Extract.path).join(
            Project, Project.id == Extract.project_id).where(
            Project.status == S.CLOSED.value, Extract.status == "deleted")).scalars())
    removed = []
    for path in map(Path, paths):
        if path.exists():
            remove_tree(path)
            removed.append(str(path))
        if remove_indexes(path.parent):
            removed.append(str(path.parent / INDEX_FOLDER))
    return removed
