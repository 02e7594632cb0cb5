"""Activity figures for the ethics committee, read from the audit chain itself.

The chain records every status change of every workflow object through
:func:`enclave.core.statemachine.move`, whose events carry ``{"from": ..., "to": ...}``: the
applications' states, the active projects over time and the time to decision are all derived
from it, so the figures never depend on a workflow's own tables (which may change) and show
exactly what the trail shows. The chain is append-only, so the fold is incremental: each call
reads only the events appended since the previous one, and starts again from scratch if the
event it stopped at no longer has the same hash (a rewritten chain).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from enclave.core.audit import GENESIS_HASH, AuditEvent
from enclave.core.db import Database

PROJECT = "project"  # the object type the access workflow's state machine declares
DRAFT = "draft"  # a project created but never moved
SUBMITTED = "submitted"
ACTIVE = "active"
DECISIONS = frozenset({"approved", "rejected"})
#: The states of the access issue, in the order people read them; others follow by name.
STATE_ORDER = ("draft", "submitted", "in_review", "changes_requested", "resubmitted",
               "approved", "active", "suspended", "rejected", "revoked", "expired", "closed")
DECISION_BUCKETS = ((0, 7), (8, 30), (31, 90), (91, None))
_BATCH = 20_000


@dataclass
class _Fold:
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    events: int = 0
    per_day: Counter[str] = field(default_factory=Counter)
    actions: set[str] = field(default_factory=set)
    states: dict[str, str] = field(default_factory=dict)
    state_counts: Counter[str] = field(default_factory=Counter)
    active_delta: Counter[str] = field(default_factory=Counter)
    submitted_on: dict[str, str] = field(default_factory=dict)
    decided: set[str] = field(default_factory=set)
    decision_days: list[int] = field(default_factory=list)
    day_seqs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def apply(self, seq: int, at: str, object_type: str, object_id: str, action: str,
              details: str | None) -> None:
        day = at[:10]
        low, high = self.day_seqs.get(day, (seq, seq))
        self.day_seqs[day] = (min(low, seq), max(high, seq))
        self.events += 1
        self.per_day[day] += 1
        self.actions.add(action)
        if object_type != PROJECT:
            return
        target = None
        if details:
            try:
                doc = json.loads(details)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("to"), str):
                target = doc["to"]
        previous = self.states.get(object_id)
        if target is None:
            if previous is None:
                self._set(object_id, None, DRAFT)
            return
        self._set(object_id, previous, target)
        if previous != ACTIVE and target == ACTIVE:
            self.active_delta[day] += 1
        elif previous == ACTIVE and target != ACTIVE:
            self.active_delta[day] -= 1
        if target == SUBMITTED:
            self.submitted_on.setdefault(object_id, day)
        elif target in DECISIONS and object_id not in self.decided \
                and object_id in self.submitted_on:
            self.decided.add(object_id)
            waited = date.fromisoformat(day) - date.fromisoformat(self.submitted_on[object_id])
            self.decision_days.append(waited.days)

    def _set(self, object_id: str, previous: str | None, target: str) -> None:
        if previous is not None:
            self.state_counts[previous] -= 1
        self.state_counts[target] += 1
        self.states[object_id] = target


@dataclass(frozen=True)
class Activity:
    """A snapshot of the figures, ready to chart."""

    events: int
    head_seq: int
    by_state: list[tuple[str, int]]
    per_day: list[tuple[date, int]]
    active: list[tuple[date, int]]
    decision_buckets: list[tuple[tuple[int, int | None], int]]
    decisions: int
    median_decision_days: float | None
    actions: list[str]
    today_events: int


class ActivityModel:
    """The incremental fold of one enclave's chain; safe to share between request threads.

    It reads the chain through its own short session while holding its lock, so callers must
    not hold a pooled connection while they wait for it: call it outside their own session.
    (A thread holding a connection while waiting for the lock, and the lock's holder waiting
    for a connection, would starve the pool.)
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._fold = _Fold()

    def _refresh(self, session: Session) -> _Fold:
        fold = self._fold
        if fold.last_seq:
            stored = session.execute(select(AuditEvent.hash)
                                     .where(AuditEvent.seq == fold.last_seq)).scalar()
            if stored != fold.last_hash:
                fold = _Fold()  # the chain was rewritten or truncated: recount everything
        details = case((AuditEvent.object_type == PROJECT, AuditEvent.details), else_=None)
        while True:
            rows = session.execute(
                select(AuditEvent.seq, AuditEvent.at, AuditEvent.object_type,
                       AuditEvent.object_id, AuditEvent.action, details, AuditEvent.hash)
                .where(AuditEvent.seq > fold.last_seq).order_by(AuditEvent.seq)
                .limit(_BATCH)).all()
            if not rows:
                break
            for seq, at, otype, oid, action, det, _hash in rows:
                fold.apply(seq, at, otype, oid, action, det)
            fold.last_seq, fold.last_hash = rows[-1][0], rows[-1][6]
        self._fold = fold
        return fold

    def seq_range(self, start: date | None, end: date | None) -> tuple[int, int] | None:
        """The sequence numbers between which every event of the UTC days ``start..end`` lies.

        A date filter then reads a range of the primary key instead of the whole table. The
        range comes from the dates recorded in the chain as it was appended; an event whose
        date was altered in the database afterwards breaks the chain, which "verify the
        chain" reports. None when no date bounds the query.
        """
        if start is None and end is None:
            return None
        low_day = start.isoformat() if start else ""
        high_day = end.isoformat() if end else "9999-12-31"
        with self._lock, self.db.sessions() as session:
            fold = self._refresh(session)
            spans = [span for day, span in fold.day_seqs.items() if low_day <= day <= high_day]
        if not spans:
            return (1, 0)  # an empty range: nothing was recorded on those days
        return (min(low for low, _ in spans), max(high for _, high in spans))

    def snapshot(self, today: date | None = None, days: int = 30,
                 active_days: int = 90) -> Activity:
        """The figures now: states, events per day over ``days``, active projects over time."""
        today = today or datetime.now(UTC).date()
        with self._lock, self.db.sessions() as session:
            fold = self._refresh(session)
            known = [s for s in STATE_ORDER if fold.state_counts.get(s)]
            others = sorted(s for s, n in fold.state_counts.items()
                            if n and s not in STATE_ORDER)
            by_state = [(s, fold.state_counts[s]) for s in known + others]
            window = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
            per_day = [(d, fold.per_day.get(d.isoformat(), 0)) for d in window]
            start = today - timedelta(days=active_days - 1)
            running = sum(n for d, n in fold.active_delta.items() if d < start.isoformat())
            active = []
            for i in range(active_days):
                d = start + timedelta(days=i)
                running += fold.active_delta.get(d.isoformat(), 0)
                active.append((d, running))
            buckets = [((lo, hi), sum(1 for x in fold.decision_days
                                      if x >= lo and (hi is None or x <= hi)))
                       for lo, hi in DECISION_BUCKETS]
            ordered = sorted(fold.decision_days)
            median = None
            if ordered:
                mid = len(ordered) // 2
                median = float(ordered[mid]) if len(ordered) % 2 else \
                    (ordered[mid - 1] + ordered[mid]) / 2
            return Activity(fold.events, fold.last_seq, by_state, per_day, active, buckets,
                            len(ordered), median, sorted(fold.actions),
                            fold.per_day.get(today.isoformat(), 0))
