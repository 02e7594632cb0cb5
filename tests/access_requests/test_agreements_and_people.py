"""Data-use agreement versions and acceptances; accreditation expiry warnings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access_requests import agreements, safe_people
from access_requests.exceptions import FieldError
from access_requests.machine import CURRENT_AGREEMENT, ProjectStatus, current_agreement, facts
from access_requests.models import Notification
from enclave.core import people, policy
from enclave.core.exceptions import PermissionDenied
from enclave.core.files import sha256_bytes
from enclave.core.policy import Role
from tests.access_requests.conftest import snapshot
from tests.workflows.factories import Factory, Person

TEXT = "Convention DUA-2027.1 : je m'engage à ne pas réidentifier les personnes."


def test_the_seeded_agreement_is_current_with_the_hash_of_its_text(
        sqlite_factory: Factory) -> None:
    with sqlite_factory.enclave.db.sessions() as session:
        current = current_agreement(session)
    assert current is not None and current.version == CURRENT_AGREEMENT
    assert current.text_sha256 == sha256_bytes(current.text.encode("utf-8"))


def test_a_new_version_must_be_accepted_again(factory: Factory) -> None:
    project_id = factory.project(ProjectStatus.ACTIVE)
    members = factory.members(project_id)
    # Actors are read before a transaction opens (SQLite allows one at a time).
    alice, claire, gaelle = (factory.actor(n) for n in ("alice", "claire", "gaelle"))
    with factory.enclave.db.sessions() as session:
        assert facts(session, project_id)["agreed"] == members
    with pytest.raises(PermissionDenied), factory.enclave.db.transaction() as session:
        agreements.publish_agreement(session, alice, "DUA-2027.1", "T", TEXT)
    with factory.enclave.db.transaction() as session:
        agreements.publish_agreement(session, claire, "DUA-2027.1", "Convention 2027", TEXT)
    with factory.enclave.db.sessions() as session:
        assert facts(session, project_id)["agreed"] == []
    head = factory.audit_head()
    bruno = factory.actor("bruno")
    with pytest.raises(FieldError), factory.enclave.db.transaction() as session:
        agreements.accept_agreement(session, bruno, project_id, CURRENT_AGREEMENT)
    for _ in range(2):  # the second acceptance of the same version records nothing
        with factory.enclave.db.transaction() as session:
            agreements.accept_agreement(session, bruno, project_id, "DUA-2027.1")
    events = factory.audit_events_after(head)
    assert [(e.action, e.actor) for e in events] == [("agreement.accepted", "bruno")]
    with factory.enclave.db.sessions() as session:
        assert facts(session, project_id)["agreed"] == ["bruno"]
        rows = agreements.acceptances(session, gaelle, project_id)
    assert [(r.username, r.version, r.text_sha256) for r in rows][-1] == (
        "bruno", "DUA-2027.1", sha256_bytes(TEXT.encode()))
    assert len(rows) == len(members) + 1


@pytest.mark.parametrize(("version", "text", "field"), [
    ("2027", TEXT, "version"), ("DUA-2026.1", TEXT, "version"), ("DUA-2027.1", "court", "text"),
    ("DUA-2027.1", TEXT + "\x1b", "text")])
def test_bad_agreement_versions_are_refused(sqlite_factory: Factory, version: str, text: str,
                                            field: str) -> None:
    before = snapshot(sqlite_factory)
    with pytest.raises(FieldError) as info, sqlite_factory.enclave.db.transaction() as session:
        agreements.publish_agreement(session, sqlite_factory.actor("claire"), version,
                                     "Convention", text)
    assert info.value.field == field
    assert snapshot(sqlite_factory) == before


def test_expiring_accreditations_are_listed_and_warned_once(sqlite_factory: Factory) -> None:
    factory = sqlite_factory
    today = date.today()
    factory.create_people([Person("paul", (Role.RESEARCHER,), accredited=False),
                           Person("lea", (Role.RESEARCHER,), accredited=False)])
    with factory.enclave.db.transaction() as session:
        # paul's ends in about 30 days; lea renewed hers (only the latest counts).
        people.record_accreditation(session, policy.SYSTEM, "paul",
                                    today - people.ACCREDITATION_VALIDITY + timedelta(days=30))
        people.record_accreditation(session, policy.SYSTEM, "lea",
                                    today - people.ACCREDITATION_VALIDITY + timedelta(days=10))
        people.record_accreditation(session, policy.SYSTEM, "lea", today - timedelta(days=1))
    claire, alice = factory.actor("claire"), factory.actor("alice")
    with factory.enclave.db.transaction() as session:
        soon = safe_people.accreditations_expiring(session, claire,
                                                   within_days=60, today=today)
        assert [(p.username, p.days_left) for p in soon] == [("paul", 30)]
        assert safe_people.warn_expiring_accreditations(session, policy.SYSTEM,
                                                        within_days=60) == ["paul"]
    with factory.enclave.db.transaction() as session:
        assert safe_people.warn_expiring_accreditations(session, policy.SYSTEM,
                                                        within_days=60) == []
        rows = session.execute(select(Notification.channel).where(
            Notification.recipient == "paul")).scalars().all()
    assert sorted(rows) == ["email", "in_app"]
    with pytest.raises(PermissionDenied), factory.enclave.db.sessions() as session:
        safe_people.accreditations_expiring(session, alice)
