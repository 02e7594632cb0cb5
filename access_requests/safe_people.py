"""Safe people: who holds a valid accreditation, and whose accreditation is about to end.

Accreditations are recorded by :func:`enclave.core.people.record_accreditation` and run four
years from the training date; this module lists those ending soon so that DEPP staff and the
people concerned are warned before access stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access_requests import notifications
from enclave.core import policy
from enclave.core.people import Accreditation, User
from enclave.core.policy import Actor


@dataclass(frozen=True)
class ExpiringAccreditation:
    """A person whose latest accreditation ends within the warning window."""

    username: str
    display_name: str
    email: str
    expires_on: date
    days_left: int


def accreditations_expiring(session: Session, actor: Actor, *, within_days: int = 90,
                            today: date | None = None) -> list[ExpiringAccreditation]:
    """Active people whose accreditation ends between today and ``within_days`` from now."""
    policy.check_record_accreditation(actor)
    if within_days < 0:
        raise ValueError("within_days must be zero or more")
    today = today or date.today()
    latest = (select(Accreditation.user_id, func.max(Accreditation.expires_on).label("until"))
              .group_by(Accreditation.user_id).subquery())
    rows = session.execute(
        select(User.username, User.display_name, User.email, latest.c.until)
        .join(latest, latest.c.user_id == User.id)
        .where(User.active.is_(True), latest.c.until >= today,
               latest.c.until <= today + timedelta(days=within_days))
        .order_by(latest.c.until, User.username)).all()
    return [ExpiringAccreditation(u, n, e, until, (until - today).days)
            for u, n, e, until in rows]


def warn_expiring_accreditations(session: Session, actor: Actor, *, within_days: int = 90,
                                 today: date | None = None) -> list[str]:
    """Notify each person whose accreditation ends soon, once per expiry date (idempotent)."""
    warned = []
    for person in accreditations_expiring(session, actor, within_days=within_days,
                                          today=today):
        if notifications.notify(session, "accreditation.expiring", [person.username],
                                dedupe_key=f"accreditation-expiring:{person.expires_on}",
                                end_date=person.expires_on.isoformat()):
            warned.append(person.username)
    return warned
