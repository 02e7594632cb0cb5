"""The access workflow pieces the portal needed, tested on the workflow itself: the register,
a form sent twice, a second approval by the same person, mandatory reasons, the protocol."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from access_requests import applications, decisions, lifecycle, membership, register
from access_requests.exceptions import (
    AlreadyApproved,
    AlreadySubmitted,
    FieldError,
    OpinionClosed,
    StaleVersion,
)
from access_requests.models import Project
from enclave.core import people
from enclave.core.audit import AuditEvent
from enclave.core.exceptions import PermissionDenied
from tests.portal import access_helpers as h
from tests.portal.factories import PREFIX, Portal
from tests.portal.test_application_pages import _pdf


def _actor(portal: Portal, who: str):  # type: ignore[no-untyped-def]
    with portal.enclave.db.sessions() as session:
        return people.actor_for(session, who)


def test_the_register_is_for_staff_and_the_committee_newest_first(portal: Portal) -> None:
    first, second = h.submitted(portal), h.submitted(portal)
    with portal.enclave.db.sessions() as session:
        page = register.applications(session, _actor(portal, "gaelle"), limit=1)
        assert [r.id for r in page.rows] == [second] and page.total == 2
        assert page.next_offset == 1 and page.previous_offset is None
        older = register.applications(session, _actor(portal, "claire"), limit=1, offset=1)
        assert [r.id for r in older.rows] == [first]
        with pytest.raises(FieldError):
            register.applications(session, _actor(portal, "gaelle"), status="nope")
        with pytest.raises(FieldError):
            register.applications(session, _actor(portal, "gaelle"), limit=0)
        for who in ("alice", "admin", "emma"):
            with pytest.raises(PermissionDenied):
                register.applications(session, _actor(portal, who))
            with pytest.raises(PermissionDenied):
                register.decisions(session, _actor(portal, who))


def test_a_form_key_makes_a_second_sending_refused(portal: Portal) -> None:
    alice = _actor(portal, "alice")
    with portal.enclave.db.transaction() as session:
        project = applications.create_application(session, alice, form_key="x" * 20, **h.PLAIN)
        project_id = project.id
    with pytest.raises(AlreadySubmitted) as refused, portal.enclave.db.transaction() as session:
        applications.create_application(session, alice, form_key="x" * 20, **h.PLAIN)
    assert refused.value.project_id == project_id
    with pytest.raises(FieldError, match="form_key"), \
            portal.enclave.db.transaction() as session:
        applications.create_application(session, alice, form_key="short", **h.PLAIN)


def test_a_second_approval_by_the_same_person_is_its_own_refusal(portal: Portal) -> None:
    project_id = h.submitted(portal, variables={"eleves": [("boursier", "Effet")]})
    claire = _actor(portal, "claire")
    with portal.enclave.db.transaction() as session:
        project = decisions.start_review(session, claire, project_id, version=None)
        decisions.approve(session, claire, project_id, version=project.version)
        version = project.version
    with pytest.raises(AlreadyApproved), portal.enclave.db.transaction() as session:
        decisions.approve(session, claire, project_id, version=version)


def test_opinions_after_the_decision_are_refused_as_such(portal: Portal) -> None:
    project_id = h.approved(portal)
    with pytest.raises(OpinionClosed), portal.enclave.db.transaction() as session:
        decisions.record_ethics_opinion(session, _actor(portal, "gaelle"), project_id,
                                        verdict="favourable")


def test_reasons_are_mandatory_when_the_edge_asks(portal: Portal) -> None:
    project_id = h.approved(portal)
    claire = _actor(portal, "claire")
    with portal.enclave.db.transaction() as session:
        row = membership.request_extension(session, _actor(portal, "alice"), project_id,
                                           new_end_date=h.END.replace(year=h.END.year + 1),
                                           reason="Terrain")
        row_id, row_version = row.id, row.version
    with pytest.raises(FieldError, match="reason"), portal.enclave.db.transaction() as session:
        membership.decide_extension_request(session, claire, row_id, approve=True,
                                            version=row_version, require_reason=True)
    with portal.enclave.db.transaction() as session:
        lifecycle.revoke(session, claire, project_id, reason="Manquement")
    with pytest.raises(FieldError, match="reason"), portal.enclave.db.transaction() as session:
        lifecycle.close_project(session, portal.enclave.keys, claire, project_id, reason="",
                                require_reason=True)
    with pytest.raises(FieldError, match="reason"), portal.enclave.db.transaction() as session:
        lifecycle.reinstate(session, claire, project_id, version=1, require_reason=True)


def test_attach_a_protocol_to_a_draft(portal: Portal) -> None:
    alice = _actor(portal, "alice")
    projects_dir = portal.enclave.settings.projects_dir
    with portal.enclave.db.transaction() as session:
        project_id = applications.create_application(session, alice, **h.PLAIN).id
    with pytest.raises(FieldError, match="protocol"), \
            portal.enclave.db.transaction() as session:
        applications.attach_protocol(session, alice, project_id, b"not a pdf", version=1,
                                     projects_dir=projects_dir)
    with pytest.raises(StaleVersion), portal.enclave.db.transaction() as session:
        applications.attach_protocol(session, alice, project_id, _pdf(), version=7,
                                     projects_dir=projects_dir)
    with pytest.raises(PermissionDenied), portal.enclave.db.transaction() as session:
        applications.attach_protocol(session, _actor(portal, "mallory"), project_id, _pdf(),
                                     version=1, projects_dir=projects_dir)
    assert not list(projects_dir.glob("*/protocol/*"))
    with portal.enclave.db.transaction() as session:
        applications.attach_protocol(session, alice, project_id, _pdf(), version=1,
                                     projects_dir=projects_dir)
    with portal.enclave.db.sessions() as session:
        project = session.get(Project, project_id)
        assert project is not None and project.version == 2 and project.protocol_sha256
        assert session.execute(select(AuditEvent.action).where(
            AuditEvent.project_id == project_id).order_by(AuditEvent.seq.desc())
        ).scalars().first() == "project.protocol_attached"
    assert len(list(projects_dir.glob(f"{project_id}/protocol/*.pdf"))) == 1


def test_attach_a_protocol_through_the_api(portal: Portal) -> None:
    with portal.enclave.db.transaction() as session:
        project_id = applications.create_application(session, _actor(portal, "alice"),
                                                     **h.PLAIN).id
    http, headers = portal.client().http, portal.bearer("alice")
    url = PREFIX + f"api/v1/projects/{project_id}/protocol"
    before = portal.head_seq()
    bad = http.put(url, json={"version": 1, "pdf_base64": base64.b64encode(b"MZ").decode()},
                   headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "protocol"
    junk = http.put(url, json={"version": 1, "pdf_base64": "%%%"}, headers=headers)
    assert junk.status_code == 422 and portal.head_seq() == before
    done = http.put(url, json={"version": 1, "pdf_base64": base64.b64encode(_pdf()).decode()},
                    headers=headers)
    assert done.status_code == 200 and done.json()["protocol_sha256"]
    stale = http.put(url, json={"version": 1, "pdf_base64": base64.b64encode(_pdf()).decode()},
                     headers=headers)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"
