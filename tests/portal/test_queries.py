"""The read model on both backends: filters, keyset paging, incremental counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from enclave.core import audit
from enclave.core.context import Enclave, initialise
from enclave.core.settings import Settings
from enclave.portal import queries
from enclave.portal.queries import AuditFilter, TrailCounter

ACTIONS = ["project.created", "project.approved", "projectx.created", "project/odd",
           "projects.listed", "PROJECT.upper", "user.created", "project.in_review"]


@pytest.fixture
def trail(settings: Settings) -> Iterator[Enclave]:
    """An enclave on each backend (SQLite, PostgreSQL) with a few events of each action."""
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    with enclave.db.transaction() as session:
        for i in range(3):
            for action in ACTIONS:
                audit.record(session, actor=f"actor{i}", action=action, object_type="t",
                             object_id=str(i), project_id=f"prj-{i}")
    yield enclave
    enclave.close()


def _actions(enclave: Enclave, filt: AuditFilter) -> set[str]:
    return {row.action for row in queries.iter_audit(enclave.db, filt)}


def test_an_action_family_is_an_exact_prefix(trail: Enclave) -> None:
    assert _actions(trail, AuditFilter(action="project.*")) == {
        "project.created", "project.approved", "project.in_review"}
    assert _actions(trail, AuditFilter(action="project.created")) == {"project.created"}
    assert _actions(trail, AuditFilter(action="%.*")) == set()
    assert _actions(trail, AuditFilter(action="_roject.*")) == set()


def test_actor_project_and_dates_filter(trail: Enclave) -> None:
    rows = list(queries.iter_audit(trail.db, AuditFilter(actor="actor1", project="prj-1")))
    assert len(rows) == len(ACTIONS) and {r.actor for r in rows} == {"actor1"}
    today = date.today()
    assert list(queries.iter_audit(trail.db, AuditFilter(date_to=today - timedelta(1)))) == []
    assert len(list(queries.iter_audit(trail.db, AuditFilter(date_from=today,
                                                             date_to=today), batch=5))) == 24


def test_keyset_pages_cover_everything_once(trail: Enclave) -> None:
    seen: list[int] = []
    before = None
    with trail.db.sessions() as session:
        while True:
            page = queries.audit_page(session, AuditFilter(), before=before, size=5)
            seen += [e.seq for e in page.events]
            if page.older_before is None:
                break
            before = page.older_before
        assert seen == list(range(24, 0, -1)) and page.total == 24
        newer = queries.audit_page(session, AuditFilter(), after=10, size=5)
        assert [e.seq for e in newer.events] == [15, 14, 13, 12, 11]
        assert newer.newer_after == 15 and newer.older_before == 11


def test_counts_follow_the_growing_chain_and_recount_after_a_rewrite(trail: Enclave) -> None:
    counter = TrailCounter(size=2)
    family = AuditFilter(action="project.*")
    with trail.db.sessions() as session:
        assert counter.count(session, family) == 9
    with trail.db.transaction() as session:
        audit.record(session, actor="x", action="project.rejected", object_type="t",
                     object_id="9")
    with trail.db.sessions() as session:
        assert counter.count(session, family) == 10
    with trail.db.transaction() as session:  # the event the count was taken at is rewritten
        session.execute(text("UPDATE audit_events SET hash = :h WHERE seq = 25"),
                        {"h": "f" * 64})
        session.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    with trail.db.sessions() as session:
        assert counter.count(session, family) == 9  # recounted, not extended
        for i in range(3):  # the cache keeps only the latest filters
            counter.count(session, AuditFilter(actor=f"actor{i}"))
    assert family not in counter._counts


def test_date_filters_read_only_the_days_range_of_the_chain(trail: Enclave) -> None:
    from enclave.portal.activity import ActivityModel

    with trail.db.transaction() as session:  # the first 8 events happened on 2 January 2020
        session.execute(text("UPDATE audit_events SET at = '2020-01-02T10:00:00.000000Z' "
                             "WHERE seq <= 8"))
    model, counter = ActivityModel(trail.db), TrailCounter()
    old = AuditFilter(date_from=date(2020, 1, 1), date_to=date(2020, 1, 3))
    assert model.seq_range(None, None) is None
    assert model.seq_range(old.date_from, old.date_to) == (1, 8)
    assert model.seq_range(date(2019, 1, 1), date(2019, 2, 1)) == (1, 0)
    today = AuditFilter(date_from=date.today())
    within = model.seq_range(old.date_from, old.date_to)
    with trail.db.sessions() as session:
        page = queries.audit_page(session, old, counter=counter, seq_range=within)
        assert [e.seq for e in page.events] == list(range(8, 0, -1)) and page.total == 8
    within = model.seq_range(today.date_from, None)
    with trail.db.sessions() as session:
        assert queries.audit_page(session, today, counter=counter, seq_range=within).total == 16
    with trail.db.transaction() as session:
        audit.record(session, actor="x", action="late.event", object_type="t", object_id="1")
    within = model.seq_range(today.date_from, None)
    assert within == (9, 25)
    with trail.db.sessions() as session:
        assert queries.audit_page(session, today, counter=counter, seq_range=within).total == 17
        assert queries.audit_page(session, today, seq_range=within).total == 17
    assert len(list(queries.iter_audit(trail.db, today, seq_range=within))) == 17
