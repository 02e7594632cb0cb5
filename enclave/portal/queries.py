"""The portal's read model: the queries behind its pages, over the core's tables only.

Routes call these functions and render what they return; no query lives in a route. Nothing
here decides who may read: the routes have already asked the policy.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from enclave.core import audit, people
from enclave.core.audit import AuditEvent
from enclave.core.catalogue import Dataset, Variable, VariableKind
from enclave.core.db import Database
from enclave.core.exceptions import NotFound
from enclave.core.policy import Actor, Role

#: An accreditation ending within this many days is shown with a warning (renewal takes time).
EXPIRY_WARNING_DAYS = 90
PAGE_SIZE = 50
KIND_ORDER = tuple(VariableKind)


# -- who is asking ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """The policy's actor and the name to greet them with."""

    actor: Actor
    display_name: str


def person(session: Session, username: str, today: date | None = None) -> Person:
    """The enclave's view of a person now (NotFound if the enclave does not know them)."""
    user = people.get_user(session, username)
    return Person(people.actor_for(session, username, today), user.display_name)


# -- catalogue ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetSummary:
    """A catalogued dataset and how many variables of each kind it holds."""

    id: str
    label: str
    description: str
    unit: str
    provider: str
    synthetic: bool
    rows: int
    loaded_at: datetime
    kinds: dict[str, int]

    @property
    def variables(self) -> int:
        """The number of variables."""
        return sum(self.kinds.values())


@dataclass(frozen=True)
class VariableRow:
    """A catalogued variable."""

    name: str
    label: str
    type: str
    kind: str
    description: str


def _summary(row: Dataset, kinds: dict[str, int]) -> DatasetSummary:
    return DatasetSummary(row.id, row.label, row.description, row.unit, row.provider,
                          bool(row.synthetic), row.rows, row.loaded_at,
                          {k.value: kinds.get(k.value, 0) for k in KIND_ORDER})


def datasets(session: Session) -> list[DatasetSummary]:
    """Every catalogued dataset, by identifier."""
    counts: dict[str, dict[str, int]] = {}
    for dataset_id, kind, n in session.execute(
            select(Variable.dataset_id, Variable.kind, func.count())
            .group_by(Variable.dataset_id, Variable.kind)):
        counts.setdefault(dataset_id, {})[kind] = n
    rows = session.execute(select(Dataset).order_by(Dataset.id)).scalars()
    return [_summary(row, counts.get(row.id, {})) for row in rows]


def dataset(session: Session, dataset_id: str) -> tuple[DatasetSummary, list[VariableRow]]:
    """One dataset and its variables in column order, or NotFound."""
    row = session.get(Dataset, dataset_id) if len(dataset_id) <= 100 else None
    if row is None:
        raise NotFound(f"no dataset {dataset_id!r} in the catalogue")
    variables = [VariableRow(v.name, v.label, v.type, v.kind, v.description) for v in
                 session.execute(select(Variable).where(Variable.dataset_id == dataset_id)
                                 .order_by(Variable.position)).scalars()]
    kinds: dict[str, int] = {}
    for var in variables:
        kinds[var.kind] = kinds.get(var.kind, 0) + 1
    return _summary(row, kinds), variables


# -- my account ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccreditationRow:
    """A recorded training."""

    trained_on: date
    expires_on: date
    reference: str
    recorded_by: str


@dataclass(frozen=True)
class Account:
    """A person's account as they see it: identity, roles, accreditation and its expiry."""

    username: str
    display_name: str
    email: str
    institution: str
    active: bool
    roles: tuple[Role, ...]
    accreditations: tuple[AccreditationRow, ...]
    status: str  # valid | expiring | expired | none
    days_left: int | None


def account(session: Session, username: str, today: date | None = None) -> Account:
    """The account of ``username`` with the status of its latest accreditation."""
    today = today or date.today()
    user = people.get_user(session, username)
    rows = tuple(AccreditationRow(a.trained_on, a.expires_on, a.reference, a.recorded_by)
                 for a in session.execute(select(people.Accreditation)
                                          .where(people.Accreditation.user_id == user.id)
                                          .order_by(people.Accreditation.expires_on.desc()))
                 .scalars())
    status, days_left = "none", None
    if rows:
        days_left = (rows[0].expires_on - today).days
        status = ("expired" if days_left < 0 else
                  "expiring" if days_left <= EXPIRY_WARNING_DAYS else "valid")
    roles = tuple(sorted(people.roles_of(session, user.id)))
    return Account(user.username, user.display_name, user.email, user.institution,
                   user.active, roles, rows, status, days_left)


# -- the audit trail ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    """What the ethics committee looks for in the trail; empty fields do not filter.

    ``action`` is an exact action (``project.approved``) or a family ending in ``.*``
    (``project.*``). Dates are UTC days, both ends included.
    """

    actor: str | None = None
    project: str | None = None
    action: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def clauses(self, dialect: str = "sqlite",
                counting: bool = False) -> list[ColumnElement[bool]]:
        """The SQL conditions of this filter for a database of ``dialect``.

        An action family is a prefix test; when ``counting`` on SQLite it is written as a range
        of the (action, seq) index instead, which counts fast but would make a page query sort
        every match rather than walk the chain backwards and stop after one page.
        """
        out: list[ColumnElement[bool]] = []
        if self.actor:
            out.append(AuditEvent.actor == self.actor)
        if self.project:
            out.append(AuditEvent.project_id == self.project)
        if self.action:
            if self.action.endswith(".*"):
                family = self.action[:-1]
                if counting and dialect == "sqlite":
                    # under SQLite's binary collation "project.*" is exactly the range
                    # ["project.", "project/") (a locale collation would not order it so)
                    out.append(AuditEvent.action >= family)
                    out.append(AuditEvent.action < family[:-1] + chr(ord(".") + 1))
                else:
                    out.append(func.substr(AuditEvent.action, 1, len(family)) == family)
            else:
                out.append(AuditEvent.action == self.action)
        if self.date_from:
            out.append(AuditEvent.at >= self.date_from.isoformat())
        if self.date_to:
            out.append(AuditEvent.at < (self.date_to + timedelta(days=1)).isoformat())
        return out

    def params(self) -> dict[str, str]:
        """The filter as query parameters (for links and the CSV export)."""
        values = {"actor": self.actor, "project": self.project, "action": self.action,
                  "date_from": self.date_from.isoformat() if self.date_from else None,
                  "date_to": self.date_to.isoformat() if self.date_to else None}
        return {k: v for k, v in values.items() if v}

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return not self.params()


@dataclass(frozen=True)
class AuditRow:
    """One event of the trail as stored."""

    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    project_id: str | None
    details: str
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, Any]:
        """The details as a mapping (a tampered, unparsable value is shown raw)."""
        try:
            value = json.loads(self.details)
        except ValueError:
            return {"_raw": self.details}
        return value if isinstance(value, dict) else {"_raw": self.details}

    def details_items(self) -> list[tuple[str, str]]:
        """The details as ``(key, text)`` pairs for display."""
        return [(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                for k, v in self.details_dict().items()]

    def as_csv(self) -> tuple[object, ...]:
        """The row's cells in :data:`CSV_HEADER` order."""
        return (self.seq, self.at, self.actor, self.action, self.object_type, self.object_id,
                self.project_id or "", self.details, self.prev_hash, self.hash)


CSV_HEADER = ("seq", "at", "actor", "action", "object_type", "object_id", "project_id",
              "details", "prev_hash", "hash")
_COLUMNS = (AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.action,
            AuditEvent.object_type, AuditEvent.object_id, AuditEvent.project_id,
            AuditEvent.details, AuditEvent.prev_hash, AuditEvent.hash)


@dataclass(frozen=True)
class AuditPage:
    """One page of the filtered trail, newest first, with keyset cursors to its neighbours."""

    events: list[AuditRow]
    total: int
    newer_after: int | None = None  # pass as ``after`` to see newer events
    older_before: int | None = None  # pass as ``before`` to see older events
    filter: AuditFilter = field(default_factory=AuditFilter)


class TrailCounter:
    """How many events match a filter, counted once then extended as the chain grows.

    The chain only ever grows, so the count of a filter at head ``n`` is its count at an
    earlier head ``m`` plus the matches among events ``m+1..n``, a range of the primary key.
    A count is recomputed from scratch when the event it was taken at no longer has the same
    hash (a rewritten chain: verification reports it). Keeps the ``size`` latest filters.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._counts: OrderedDict[AuditFilter, tuple[int, str, int]] = OrderedDict()

    def count(self, session: Session, filt: AuditFilter,
              seq_range: tuple[int, int] | None = None) -> int:
        """The number of events matching ``filt`` now (``seq_range``: see audit_page)."""
        clauses = _within(filt.clauses(session.get_bind().dialect.name, counting=True),
                          seq_range)
        head_seq, head_hash = audit.head(session)
        upto = head_seq if seq_range is None else max(0, min(head_seq, seq_range[1]))
        upto_hash = head_hash if upto == head_seq else str(session.execute(
            select(AuditEvent.hash).where(AuditEvent.seq == upto)).scalar() or "")
        with self._lock:
            known = self._counts.get(filt)
        start, total = 0, 0
        if known is not None and known[0] <= upto:
            stored = session.execute(select(AuditEvent.hash)
                                     .where(AuditEvent.seq == known[0])).scalar()
            if known[0] == 0 or stored == known[1]:
                start, total = known[0], known[2]
        if upto > start:
            total += int(session.execute(
                select(func.count()).select_from(AuditEvent)
                .where(*clauses, AuditEvent.seq > start, AuditEvent.seq <= upto)).scalar() or 0)
        with self._lock:
            self._counts[filt] = (upto, upto_hash, total)
            self._counts.move_to_end(filt)
            while len(self._counts) > self.size:
                self._counts.popitem(last=False)
        return total


def _within(clauses: list[ColumnElement[bool]],
            seq_range: tuple[int, int] | None) -> list[ColumnElement[bool]]:
    if seq_range is None:
        return clauses
    return [*clauses, AuditEvent.seq >= seq_range[0], AuditEvent.seq <= seq_range[1]]


def _any(session: Session, clauses: list[ColumnElement[bool]]) -> bool:
    return bool(session.execute(select(exists().where(*clauses))).scalar())


def audit_page(session: Session, filt: AuditFilter, *, before: int | None = None,
               after: int | None = None, size: int = PAGE_SIZE,
               counter: TrailCounter | None = None,
               seq_range: tuple[int, int] | None = None) -> AuditPage:
    """Events matching ``filt``, ``size`` at a time, newest first (keyset paging on ``seq``).

    ``seq_range``, when given, is where the filter's dates lie in the chain (see
    :meth:`enclave.portal.activity.ActivityModel.seq_range`); the dates are still checked.
    """
    dialect = session.get_bind().dialect.name
    clauses = _within(filt.clauses(dialect), seq_range)
    total = counter.count(session, filt, seq_range) if counter is not None else int(
        session.execute(select(func.count()).select_from(AuditEvent).where(
            *_within(filt.clauses(dialect, counting=True), seq_range))).scalar() or 0)
    query = select(*_COLUMNS).where(*clauses)
    if after is not None and before is None:
        rows = session.execute(query.where(AuditEvent.seq > after)
                               .order_by(AuditEvent.seq.asc()).limit(size + 1)).all()
        more_newer = len(rows) > size
        events = [AuditRow(**r._mapping) for r in reversed(rows[:size])]
        more_older = bool(events) and _any(session, [*clauses, AuditEvent.seq < events[-1].seq])
    else:
        if before is not None:
            query = query.where(AuditEvent.seq < before)
        rows = session.execute(query.order_by(AuditEvent.seq.desc()).limit(size + 1)).all()
        more_older = len(rows) > size
        events = [AuditRow(**r._mapping) for r in rows[:size]]
        more_newer = bool(events) and before is not None and _any(
            session, [*clauses, AuditEvent.seq > events[0].seq])
    return AuditPage(events, total,
                     events[0].seq if events and more_newer else None,
                     events[-1].seq if events and more_older else None, filt)


def iter_audit(db: Database, filt: AuditFilter, batch: int = 2000,
               seq_range: tuple[int, int] | None = None) -> Iterator[AuditRow]:
    """Every event matching ``filt`` up to the chain's head when it starts, in chain order.

    Each batch is read in its own short transaction, so that a long export never holds the
    database while the file is being sent (on SQLite every transaction takes its lock).
    """
    with db.sessions() as session:
        upto = audit.head(session)[0]
    clauses = [*_within(filt.clauses(db.dialect), seq_range), AuditEvent.seq <= upto]
    last = 0
    while True:
        with db.sessions() as session:
            rows = session.execute(select(*_COLUMNS).where(*clauses, AuditEvent.seq > last)
                                   .order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield AuditRow(**row._mapping)
        last = rows[-1][0]
