"""Data-use agreements: published versions (with the SHA-256 of their text) and acceptances.

Every member of a project accepts the current version once the project is approved; the
project becomes active only when all have (see the activation condition of the machine). When
DEPP staff publish a new version, members must accept it again before they may use the data.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_requests import validation
from access_requests.exceptions import FieldError
from access_requests.machine import ProjectStatus, current_agreement, members_of
from access_requests.models import AgreementAcceptance, AgreementVersion, Membership
from access_requests.moves import locked_project
from enclave.core import audit, policy
from enclave.core.db import utcnow
from enclave.core.exceptions import ValidationError
from enclave.core.files import sha256_bytes
from enclave.core.policy import Actor

VERSION_NAME = re.compile(r"^DUA-\d{4}\.\d{1,3}$")
#: Statuses in which members accept the agreement (before activation, and to re-accept a new
#: version while the project runs).
ACCEPTING = frozenset({ProjectStatus.APPROVED, ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED})


def publish_agreement(session: Session, actor: Actor, version: str, title: str,
                      text: str) -> AgreementVersion:
    """Publish a new agreement version (``DUA-YYYY.N``); it becomes the current one."""
    policy.check_publish_agreement(actor)
    if not isinstance(version, str) or not VERSION_NAME.match(version):
        raise FieldError("version", "must look like DUA-2027.1")
    title = validation.text("title", title, max_len=300, min_len=3)
    text = validation.text("text", text, max_len=100_000, min_len=20, multiline=True)
    if session.get(AgreementVersion, version) is not None:
        raise FieldError("version", f"{version} is already published; versions never change")
    row = AgreementVersion(version=version, title=title, text=text,
                           text_sha256=sha256_bytes(text.encode("utf-8")),
                           published_by=actor.username, published_at=utcnow())
    session.add(row)
    audit.record(session, actor=actor.username, action="agreement.published",
                 object_type="agreement", object_id=version,
                 details={"title": title, "text_sha256": row.text_sha256})
    return row


def accept_agreement(session: Session, actor: Actor, project_id: str,
                     version: str | None = None) -> Membership:
    """A member accepts the current data-use agreement (who, when, which version, its hash).

    ``version`` is the version the member was shown; it must still be the current one.
    Accepting the same version twice records nothing new.
    """
    project = locked_project(session, project_id)
    members = [m.username for m in members_of(session, project_id)]
    policy.check_accept_agreement(actor, members, project.status in ACCEPTING)
    current = current_agreement(session)
    if current is None:
        raise ValidationError("no data-use agreement is published yet")
    version = current.version if version is None else version
    if version != current.version:
        raise FieldError("version", f"agreement {version or '(none)'} is not the current one "
                                    f"({current.version}); read and accept the current one")
    membership = session.execute(select(Membership).where(
        Membership.project_id == project_id, Membership.username == actor.username)).scalar_one()
    if membership.agreement_version == version:
        return membership
    now = utcnow()
    membership.agreement_version = version
    membership.agreement_accepted_at = now
    session.add(AgreementAcceptance(project_id=project_id, username=actor.username,
                                    version=version, text_sha256=current.text_sha256,
                                    accepted_at=now))
    audit.record(session, actor=actor.username, action="agreement.accepted",
                 object_type="project", object_id=project_id, project_id=project_id,
                 details={"agreement": version, "text_sha256": current.text_sha256})
    return membership


def acceptances(session: Session, actor: Actor, project_id: str) -> list[AgreementAcceptance]:
    """Every acceptance recorded for the project, oldest first."""
    policy.check_view_project(actor, [m.username for m in members_of(session, project_id)])
    return list(session.execute(select(AgreementAcceptance).where(
        AgreementAcceptance.project_id == project_id)
        .order_by(AgreementAcceptance.accepted_at, AgreementAcceptance.id)).scalars())
