"""The decision after the provider authenticated someone: groups to roles, then the policy.

Runs on SQLite and on the throwaway PostgreSQL cluster (the ``enclave`` fixture).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from enclave.core import audit, people, policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound
from enclave.core.policy import Role
from enclave.hub.oidc import (
    Identity,
    decide_oidc_login,
    enclave_group,
    groups_from_claim,
    session_still_allowed,
)


def _events(enclave: Enclave, username: str) -> list[str]:
    with enclave.db.sessions() as session:
        return list(session.execute(select(audit.AuditEvent.action).where(
            audit.AuditEvent.object_id == username).order_by(audit.AuditEvent.seq)).scalars())


def _add(enclave: Enclave, username: str, role: Role, trained_days_ago: int | None) -> None:
    with enclave.db.transaction() as session:
        people.create_user(session, policy.SYSTEM, username, username.title(), roles=[role])
        if trained_days_ago is not None:
            people.record_accreditation(session, policy.SYSTEM, username,
                                        date.today() - timedelta(days=trained_days_ago))


@pytest.mark.parametrize(("claim", "expected"), [
    (["researchers"], {"researchers"}),
    (["/researchers", "/depp-staff"], {"researchers", "depp-staff"}),  # Keycloak full path
    (["/partner/researchers"], set()),  # a nested group is another group
    (["Researchers", "admins", "researchers/"], set()),
    ("researchers", set()),  # a string is not a list of groups: nothing, not its letters
    (None, set()),
    ([["researchers"], 3, None], set()),
])
def test_groups_claim_keeps_only_the_enclave_groups(claim: object, expected: set[str]) -> None:
    assert groups_from_claim(claim) == expected


def test_enclave_group_knows_every_group_of_the_policy() -> None:
    for group in policy.GROUP_ROLES:
        assert enclave_group(group) == group
        assert enclave_group("/" + group) == group


def test_accredited_researcher_is_admitted_and_audited(enclave: Enclave) -> None:
    _add(enclave, "rita", Role.RESEARCHER, 10)
    result = decide_oidc_login(enclave, Identity("rita", frozenset({"researchers"})), "10.0.0.1")
    assert result == {"name": "rita", "groups": ["researchers"]}
    assert _events(enclave, "rita")[-1] == "login.succeeded"


def test_unknown_staff_member_gets_an_account_with_the_role_of_their_group(
        enclave: Enclave) -> None:
    result = decide_oidc_login(enclave, Identity("sam", frozenset({"output-checkers"}),
                                                 "Sam Dupont", "sam@example.fr"))
    assert result["groups"] == ["output-checkers"]
    with enclave.db.sessions() as session:
        user = people.get_user(session, "sam")
        assert (user.display_name, user.email, user.password_hash) == (
            "Sam Dupont", "sam@example.fr", None)
        assert people.roles_of(session, user.id) == {Role.OUTPUT_CHECKER}
    assert _events(enclave, "sam") == ["user.created", "login.succeeded"]


def test_unknown_researcher_gets_an_account_but_no_entry_before_training(
        enclave: Enclave) -> None:
    result = decide_oidc_login(enclave, Identity("nina", frozenset({"researchers"})))
    assert "no valid accreditation" in result["denied"]
    assert _events(enclave, "nina") == ["user.created", "login.denied"]


def test_unknown_person_without_a_group_is_refused_and_leaves_no_account(
        enclave: Enclave) -> None:
    result = decide_oidc_login(enclave, Identity("zoe", frozenset()))
    assert "holds no enclave role" in result["denied"]
    with enclave.db.sessions() as session, pytest.raises(NotFound):
        people.get_user(session, "zoe")
    assert _events(enclave, "zoe") == ["login.denied"]


def test_unknown_people_are_refused_when_account_creation_is_off(enclave: Enclave) -> None:
    result = decide_oidc_login(enclave, Identity("omar", frozenset({"depp-staff"})),
                               create_unknown=False)
    assert "no account in the enclave" in result["denied"]


def test_groups_replace_the_roles_held_in_the_database(enclave: Enclave) -> None:
    _add(enclave, "paul", Role.RESEARCHER, 10)
    result = decide_oidc_login(enclave, Identity("paul", frozenset({"ethics-committee"})))
    assert result["groups"] == ["ethics-committee"]
    assert _events(enclave, "paul")[-2:] == ["user.roles_synced", "login.succeeded"]


@pytest.mark.parametrize("username", ["Eve", "eve smith", "../eve", ".eve", "", "e" * 101])
def test_usernames_the_enclave_cannot_hold_are_refused(enclave: Enclave,
                                                       username: str) -> None:
    result = decide_oidc_login(enclave, Identity(username, frozenset({"depp-staff"})))
    assert "not a valid enclave username" in result["denied"]


def test_deactivated_account_is_refused_whatever_its_groups(enclave: Enclave) -> None:
    _add(enclave, "ivan", Role.DEPP_STAFF, None)
    with enclave.db.transaction() as session:
        people.get_user(session, "ivan").active = False
    result = decide_oidc_login(enclave, Identity("ivan", frozenset({"depp-staff"})))
    assert "not an active account" in result["denied"]


def test_a_session_ends_when_the_accreditation_has_expired(enclave: Enclave) -> None:
    _add(enclave, "lea", Role.RESEARCHER, 10)
    assert session_still_allowed(enclave, "lea") == ["researchers"]
    _add(enclave, "old", Role.RESEARCHER, 5 * 365)
    assert session_still_allowed(enclave, "old") is None
    assert _events(enclave, "old")[-1] == "login.session_ended"
    assert session_still_allowed(enclave, "nobody") is None


def test_unknown_groups_beside_enclave_groups_grant_nothing_more(enclave: Enclave) -> None:
    result = decide_oidc_login(enclave, Identity(
        "mixed", frozenset({"/depp-staff", "/partner/researchers", "staff", "enclave-admins"})))
    assert result["groups"] == ["depp-staff", "enclave-admins"]
    with enclave.db.sessions() as session:
        assert set(people.actor_for(session, "mixed").roles) == {Role.DEPP_STAFF,
                                                                  Role.PLATFORM_ADMIN}
