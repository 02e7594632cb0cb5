"""Notifications: an outbox written with the change it announces, e-mail through SMTP, in-app.

:func:`notify` writes, in the caller's transaction, one in-app row and one e-mail row per
recipient, each with its subject and body in French and English; if the change rolls back,
so do its notifications. :func:`deliver_email` (called by the hub's timer or the command line,
with the SMTP settings of the deployment) sends pending e-mail rows and marks them sent. Every
message is plain text: project titles and reasons are data, never markup.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from access_requests.models import Membership, Notification
from enclave.core import policy
from enclave.core.db import Database, utcnow
from enclave.core.people import RoleGrant, User
from enclave.core.policy import Actor, Role


class Channel(StrEnum):
    """How a notification reaches its recipient."""

    EMAIL = "email"
    IN_APP = "in_app"


class Delivery(StrEnum):
    """Where an e-mail row stands (in-app rows are ``stored`` and carry ``read_at``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    STORED = "stored"


@dataclass(frozen=True)
class Message:
    """A bilingual message template; placeholders are filled with plain values."""

    subject_fr: str
    subject_en: str
    body_fr: str
    body_en: str


_P = "« {title} » ({project_id})"
_E = '"{title}" ({project_id})'
#: Every message the workflow sends, by event.
MESSAGES: Mapping[str, Message] = {
    "project.submitted": Message(
        "Nouvelle demande d'accès : {project_id}", "New access application: {project_id}",
        "La demande " + _P + " a été déposée et attend un examen.",
        "Application " + _E + " was submitted and awaits review."),
    "project.resubmitted": Message(
        "Demande modifiée : {project_id}", "Application resubmitted: {project_id}",
        "La demande " + _P + " a été modifiée et déposée à nouveau.",
        "Application " + _E + " was changed and submitted again."),
    "project.ethics_needed": Message(
        "Avis éthique demandé : {project_id}", "Ethics opinion needed: {project_id}",
        "La demande " + _P + " porte sur des données sensibles ou des traces d'apprentissage ; "
        "un avis du comité d'éthique est nécessaire.",
        "Application " + _E + " requests sensitive data or learning traces; an ethics "
        "committee opinion is needed."),
    "project.changes_requested": Message(
        "Modifications demandées : {project_id}", "Changes requested: {project_id}",
        "La DEPP demande des modifications à la demande " + _P + ".\nMotif : {reason}",
        "DEPP asks for changes to application " + _E + ".\nReason: {reason}"),
    "project.approval_recorded": Message(
        "Premier avis favorable : {project_id}", "First approval recorded: {project_id}",
        "Un premier avis favorable a été donné sur " + _P + " ; il en faut un second.",
        "A first approval was recorded on " + _E + "; a second one is needed."),
    "project.approved": Message(
        "Demande approuvée : {project_id}", "Application approved: {project_id}",
        "La demande " + _P + " est approuvée. Chaque membre doit accepter la convention "
        "d'utilisation des données.",
        "Application " + _E + " is approved. Every member must accept the data-use "
        "agreement."),
    "project.rejected": Message(
        "Demande refusée : {project_id}", "Application rejected: {project_id}",
        "La demande " + _P + " est refusée.\nMotif : {reason}",
        "Application " + _E + " was rejected.\nReason: {reason}"),
    "project.activated": Message(
        "Projet actif : {project_id}", "Project active: {project_id}",
        "Le projet " + _P + " est actif : son extraction est disponible dans l'enclave.",
        "Project " + _E + " is active: its extract is available in the enclave."),
    "project.suspended": Message(
        "Projet suspendu : {project_id}", "Project suspended: {project_id}",
        "Le projet " + _P + " est suspendu.\nMotif : {reason}",
        "Project " + _E + " is suspended.\nReason: {reason}"),
    "project.reinstated": Message(
        "Projet rétabli : {project_id}", "Project reinstated: {project_id}",
        "Le projet " + _P + " est de nouveau actif.",
        "Project " + _E + " is active again."),
    "project.revoked": Message(
        "Accès révoqué : {project_id}", "Access revoked: {project_id}",
        "L'accès du projet " + _P + " est révoqué.\nMotif : {reason}",
        "Access for project " + _E + " is revoked.\nReason: {reason}"),
    "project.expired": Message(
        "Projet arrivé à échéance : {project_id}", "Project expired: {project_id}",
        "Le projet " + _P + " a atteint sa date de fin ({end_date}) ; l'accès est fermé.",
        "Project " + _E + " reached its end date ({end_date}); access is closed."),
    "project.closed": Message(
        "Projet clos : {project_id}", "Project closed: {project_id}",
        "Le projet " + _P + " est clos : son extraction est supprimée et sa clé détruite.",
        "Project " + _E + " is closed: its extract is deleted and its key destroyed."),
    "ethics.opinion_recorded": Message(
        "Avis du comité d'éthique : {project_id}", "Ethics committee opinion: {project_id}",
        "Le comité d'éthique a rendu un avis « {verdict} » sur " + _P + ".",
        "The ethics committee gave a '{verdict}' opinion on " + _E + "."),
    "membership.requested": Message(
        "Demande de changement de membre : {project_id}",
        "Membership change requested: {project_id}",
        "Changement demandé pour " + _P + " : {change} {username}.",
        "Change requested for " + _E + ": {change} {username}."),
    "membership.decided": Message(
        "Changement de membre {decision} : {project_id}",
        "Membership change {decision}: {project_id}",
        "Le changement « {change} {username} » du projet " + _P + " : {decision}.",
        "Change '{change} {username}' on project " + _E + ": {decision}."),
    "extension.requested": Message(
        "Demande de prolongation : {project_id}", "Extension requested: {project_id}",
        "Prolongation demandée pour " + _P + " jusqu'au {end_date}.",
        "Extension requested for " + _E + " until {end_date}."),
    "extension.decided": Message(
        "Prolongation {decision} : {project_id}", "Extension {decision}: {project_id}",
        "La prolongation du projet " + _P + " jusqu'au {end_date} : {decision}.",
        "The extension of project " + _E + " until {end_date}: {decision}."),
    "accreditation.expiring": Message(
        "Votre habilitation expire le {end_date}", "Your accreditation expires on {end_date}",
        "Votre habilitation à l'accès aux données de la DEPP expire le {end_date}. Suivez la "
        "formation de renouvellement pour garder l'accès à vos projets.",
        "Your accreditation for DEPP data expires on {end_date}. Take the renewal training "
        "to keep access to your projects."),
}


def project_members(session: Session, project_id: str) -> list[str]:
    """Usernames of a project's members."""
    return list(session.execute(select(Membership.username).where(
        Membership.project_id == project_id).order_by(Membership.username)).scalars())


def people_with_role(session: Session, role: Role) -> list[str]:
    """Active people holding ``role`` (for example every DEPP staff member)."""
    return list(session.execute(
        select(User.username).join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == role.value, User.active.is_(True))
        .order_by(User.username)).scalars())


def notify(session: Session, event: str, recipients: Iterable[str], *,
           project_id: str | None = None, exclude: Iterable[str] = (),
           dedupe_key: str | None = None, **values: Any) -> int:
    """Queue ``event``'s message for each recipient on every channel; returns the people.

    ``values`` fill the template's placeholders (as plain text). With ``dedupe_key``, a
    recipient already notified under that key is skipped (idempotent warnings).
    """
    message = MESSAGES[event]
    fill = {"project_id": project_id or "", **{k: str(v) for k, v in values.items()}}
    skip = set(exclude)
    people = [r for r in dict.fromkeys(recipients) if r not in skip]
    if dedupe_key is not None and people:
        seen = set(session.execute(select(Notification.recipient).where(
            Notification.dedupe_key == dedupe_key,
            Notification.recipient.in_(people))).scalars())
        people = [p for p in people if p not in seen]
    now = utcnow()
    subject_fr, subject_en = message.subject_fr.format(**fill), message.subject_en.format(**fill)
    body_fr, body_en = message.body_fr.format(**fill), message.body_en.format(**fill)
    for person in people:
        for channel, status in ((Channel.IN_APP, Delivery.STORED),
                                (Channel.EMAIL, Delivery.PENDING)):
            session.add(Notification(
                recipient=person, channel=channel.value, event=event, project_id=project_id,
                subject_fr=subject_fr[:300], subject_en=subject_en[:300], body_fr=body_fr,
                body_en=body_en, status=status.value, attempts=0, last_error="",
                dedupe_key=dedupe_key, created_at=now))
    return len(people)


# -- in-app ---------------------------------------------------------------------------------------

def unread_notifications(session: Session, actor: Actor, *,
                         limit: int = 50) -> list[Notification]:
    """The actor's unread in-app notifications, newest first."""
    policy.check_read_notifications(actor, actor.username)
    return list(session.execute(select(Notification).where(
        Notification.recipient == actor.username, Notification.channel == Channel.IN_APP.value,
        Notification.read_at.is_(None))
        .order_by(Notification.id.desc()).limit(max(1, min(limit, 500)))).scalars())


def unread_count(session: Session, actor: Actor) -> int:
    """How many in-app notifications the actor has not read."""
    policy.check_read_notifications(actor, actor.username)
    return int(session.execute(select(func.count()).select_from(Notification).where(
        Notification.recipient == actor.username, Notification.channel == Channel.IN_APP.value,
        Notification.read_at.is_(None))).scalar_one())


def mark_read(session: Session, actor: Actor, notification_ids: Iterable[int]) -> int:
    """Mark the actor's own notifications read (others' ids are ignored); returns how many."""
    policy.check_read_notifications(actor, actor.username)
    ids = [i for i in notification_ids if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        return 0
    result = session.execute(update(Notification).where(
        Notification.id.in_(ids), Notification.recipient == actor.username,
        Notification.channel == Channel.IN_APP.value, Notification.read_at.is_(None))
        .values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


# -- e-mail ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryReport:
    """What one run of the sender did."""

    sent: int
    failed: int
    retry_later: int
    configured: bool


def _email(row: Notification, to: str, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"{row.subject_fr} / {row.subject_en}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = "fr, en"
    msg.set_content(f"{row.body_fr}\n\n-- English --\n\n{row.body_en}\n\n"
                    "Enclave sécurisée de la DEPP / DEPP secure research data enclave\n")
    return msg


def _claim(db: Database, row_id: int) -> bool:
    """Take one pending row for this sender (two senders never send the same row)."""
    with db.transaction() as session:
        result = session.execute(update(Notification).where(
            Notification.id == row_id, Notification.status == Delivery.PENDING.value)
            .values(status=Delivery.SENDING.value, attempts=Notification.attempts + 1))
        return bool(getattr(result, "rowcount", 0))


def _settle(db: Database, row_id: int, error: str | None, max_attempts: int) -> str:
    with db.transaction() as session:
        row = session.get(Notification, row_id)
        assert row is not None  # noqa: S101 - rows are never deleted
        if error is None:
            row.status, row.sent_at, row.last_error = Delivery.SENT.value, utcnow(), ""
        else:
            row.last_error = error[:2000]
            row.status = (Delivery.FAILED.value if row.attempts >= max_attempts
                          else Delivery.PENDING.value)
        return row.status


def deliver_email(db: Database, *, host: str | None, port: int = 25, sender: str,
                  starttls: bool = False, username: str | None = None,
                  password: str | None = None, timeout: float = 10.0, batch: int = 200,
                  max_attempts: int = 5, actor: Actor = policy.SYSTEM) -> DeliveryReport:
    """Send pending e-mail rows through the SMTP server ``host:port`` and mark them sent.

    Without ``host`` (SMTP not configured) nothing is sent and rows stay pending. A row is
    claimed before it is sent and settled after, so concurrent senders never send it twice;
    a failure leaves it pending for a later run until ``max_attempts``, then ``failed``.
    """
    policy.check_deliver_notifications(actor)
    if not host:
        return DeliveryReport(0, 0, 0, configured=False)
    with db.sessions() as session:
        rows = list(session.execute(
            select(Notification, User.email)
            .join(User, User.username == Notification.recipient, isouter=True)
            .where(Notification.channel == Channel.EMAIL.value,
                   Notification.status == Delivery.PENDING.value)
            .order_by(Notification.id).limit(max(1, batch))).all())
    sent = failed = retry = 0
    smtp: smtplib.SMTP | None = None
    try:
        for row, address in rows:
            if not _claim(db, row.id):
                continue
            error: str | None = None
            if not address:
                error = "no e-mail address on record"
            else:
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(host, port, timeout=timeout)
                        if starttls:
                            smtp.starttls(context=ssl.create_default_context())
                        if username:
                            smtp.login(username, password or "")
                    smtp.send_message(_email(row, address, sender))
                except (OSError, smtplib.SMTPException) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    if smtp is not None:
                        smtp.close()
                    smtp = None
            status = _settle(db, row.id, error, 1 if not address else max_attempts)
            sent += status == Delivery.SENT
            failed += status == Delivery.FAILED
            retry += status == Delivery.PENDING
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    return DeliveryReport(sent, failed, retry, configured=True)
