"""People: accounts, passwords, accreditation (safe people) and roles from identity groups."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from enclave.core import audit, people
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.core.people import Accreditation, RoleGrant, User
from enclave.core.policy import SYSTEM, Actor, Role

ADMIN = Actor("ada", frozenset({Role.PLATFORM_ADMIN}))
STAFF = Actor("dora", frozenset({Role.DEPP_STAFF}))
PASSWORD = "correct horse battery"


def _count(enclave: Enclave, model: type) -> int:
    with enclave.db.sessions() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _actions(enclave: Enclave) -> list[str]:
    with enclave.db.sessions() as session:
        return list(session.execute(select(audit.AuditEvent.action)
                                    .order_by(audit.AuditEvent.seq)).scalars())


def _create(enclave: Enclave, username: str = "rita", *roles: Role,
            password: str | None = None) -> None:
    with enclave.db.transaction() as session:
        people.create_user(session, ADMIN, username, "Rita Chercheuse", roles=roles,
                           institution="INSEE", password=password)


# -- accounts -------------------------------------------------------------------------------------

def test_create_user_stores_roles_and_is_audited(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER, Role.OUTPUT_CHECKER)
    with enclave.db.sessions() as session:
        user = people.get_user(session, "rita")
        assert user.active is True
        assert user.institution == "INSEE"
        assert user.password_hash is None
        assert people.roles_of(session, user.id) == {Role.RESEARCHER, Role.OUTPUT_CHECKER}
        event = session.execute(select(audit.AuditEvent)).scalar_one()
    assert (event.action, event.actor, event.object_id) == ("user.created", "ada", "rita")
    assert '"roles":["output_checker","researcher"]' in event.details


def test_system_role_is_never_granted_to_an_account(sqlite_enclave: Enclave) -> None:
    with sqlite_enclave.db.transaction() as session:
        user = people.create_user(session, SYSTEM, "sam", "Sam",
                                  roles=[Role.SYSTEM, Role.DEPP_STAFF])
        assert people.roles_of(session, user.id) == {Role.DEPP_STAFF}


def test_duplicate_username_is_refused(enclave: Enclave) -> None:
    _create(enclave, "rita")
    with pytest.raises(ValidationError, match="already exists"):
        _create(enclave, "rita")
    assert _count(enclave, User) == 1
    assert _actions(enclave) == ["user.created"]


@pytest.mark.parametrize("username", [
    "Rita", "rita chercheuse", "../x", "x/y", "a" * 101, "", ".", "..", ".hidden", "-rf",
    "élève", "rita\n"],
    ids=["uppercase", "space", "dotdot-slash", "slash", "101-chars", "empty", "dot", "dotdot",
         "leading-dot", "leading-dash", "accent", "newline"])
def test_bad_usernames_are_refused_and_nothing_is_written(sqlite_enclave: Enclave,
                                                          username: str) -> None:
    with sqlite_enclave.db.transaction() as session, pytest.raises(ValidationError,
                                                                   match="username"):
        people.create_user(session, ADMIN, username, "X")
    assert _count(sqlite_enclave, User) == 0
    assert _actions(sqlite_enclave) == []


def test_longest_allowed_username_is_accepted(sqlite_enclave: Enclave) -> None:
    _create(sqlite_enclave, "a" * 100)
    _create(sqlite_enclave, "j.dupont-2_b")
    assert _count(sqlite_enclave, User) == 2


@pytest.mark.parametrize("actor", [
    STAFF, Actor("rita", frozenset({Role.RESEARCHER})), Actor("nobody"),
    Actor("ada", frozenset({Role.PLATFORM_ADMIN}), active=False)],
    ids=["depp-staff", "researcher", "no-role", "inactive-admin"])
def test_only_platform_admins_or_the_system_create_users(enclave: Enclave, actor: Actor) -> None:
    # The refusal is caught inside the transaction, which then commits: the function itself
    # must have written nothing.
    with enclave.db.transaction() as session, pytest.raises(PermissionDenied):
        people.create_user(session, actor, "rita", "Rita", roles=[Role.RESEARCHER],
                           password=PASSWORD)
    assert _count(enclave, User) == 0
    assert _count(enclave, RoleGrant) == 0
    assert _actions(enclave) == []


# -- passwords ------------------------------------------------------------------------------------

def test_password_hash_is_scrypt_and_does_not_contain_the_password() -> None:
    stored = people.hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(bytes.fromhex(salt)) == 16
    assert len(bytes.fromhex(digest)) == 64
    assert PASSWORD not in stored
    assert PASSWORD.encode().hex() not in stored
    assert people.hash_password(PASSWORD) != stored  # salted


def test_password_matches_returns_true_only_for_the_right_password() -> None:
    stored = people.hash_password(PASSWORD)
    assert people.password_matches(stored, PASSWORD) is True
    assert people.password_matches(stored, PASSWORD + " ") is False
    assert people.password_matches(stored, "") is False


@pytest.mark.parametrize("stored", [None, "", "scrypt$x", "scrypt$16384$8$1$zz$00",
                                    "scrypt$3$8$1$00$00"])
def test_malformed_stored_hash_never_matches(stored: str | None) -> None:
    assert people.password_matches(stored, PASSWORD) is False


def test_short_password_is_refused(sqlite_enclave: Enclave) -> None:
    with pytest.raises(ValidationError, match="8 characters"):
        people.hash_password("1234567")
    with sqlite_enclave.db.transaction() as session, pytest.raises(ValidationError):
        people.create_user(session, ADMIN, "rita", "Rita", password="short")
    assert _count(sqlite_enclave, User) == 0
    assert _actions(sqlite_enclave) == []


def test_authenticate(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER, password=PASSWORD)
    _create(enclave, "olga", Role.RESEARCHER)  # an OpenID Connect account: no password
    with enclave.db.transaction() as session:
        user = people.authenticate(session, "rita", PASSWORD)
        assert user is not None and user.username == "rita"
        assert people.authenticate(session, "rita", "wrong password") is None
        assert people.authenticate(session, "nobody", PASSWORD) is None
        assert people.authenticate(session, "olga", PASSWORD) is None
        people.get_user(session, "rita").active = False
    with enclave.db.sessions() as session:
        assert people.authenticate(session, "rita", PASSWORD) is None


# -- accreditation --------------------------------------------------------------------------------

def test_accreditation_is_recorded_by_depp_staff_with_its_expiry(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER)
    trained = date.today() - timedelta(days=10)
    with enclave.db.transaction() as session:
        acc = people.record_accreditation(session, STAFF, "rita", trained, "CASD-2026-17")
    assert acc.expires_on == trained + timedelta(days=1461)
    with enclave.db.sessions() as session:
        row = session.execute(select(Accreditation)).scalar_one()
        event = session.execute(select(audit.AuditEvent)
                                .where(audit.AuditEvent.action == "accreditation.recorded")
                                ).scalar_one()
    assert (row.trained_on, row.expires_on, row.recorded_by) == (trained, acc.expires_on, "dora")
    assert event.object_id == "rita"
    assert f'"expires_on":"{acc.expires_on.isoformat()}"' in event.details


@pytest.mark.parametrize("trained_on", [date(2020, 2, 29), date(2021, 3, 1), date(2022, 1, 1),
                                        date(2023, 12, 31)])
def test_accreditation_expiry_exact_values(trained_on: date) -> None:
    expires = trained_on + people.ACCREDITATION_VALIDITY
    assert timedelta(days=1461) == people.ACCREDITATION_VALIDITY
    four_years = trained_on.replace(year=trained_on.year + 4)
    assert expires == four_years  # every four-year span from 2020 to 2027 holds one 29 February


def _plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February to a common year
        return day.replace(year=day.year + years, day=28)


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)))
def test_accreditation_lasts_at_least_four_calendar_years(trained_on: date) -> None:
    expires = trained_on + people.ACCREDITATION_VALIDITY
    four_years = _plus_years(trained_on, 4)
    assert four_years - timedelta(days=1) <= expires <= four_years + timedelta(days=1)


@pytest.mark.parametrize("actor", [ADMIN, Actor("rita", frozenset({Role.RESEARCHER})),
                                   Actor("dora", frozenset({Role.DEPP_STAFF}), active=False)],
                         ids=["admin", "researcher", "inactive-staff"])
def test_only_depp_staff_record_accreditations(sqlite_enclave: Enclave, actor: Actor) -> None:
    _create(sqlite_enclave, "rita", Role.RESEARCHER)
    with sqlite_enclave.db.transaction() as session, pytest.raises(PermissionDenied):
        people.record_accreditation(session, actor, "rita", date.today())
    assert _count(sqlite_enclave, Accreditation) == 0
    assert _actions(sqlite_enclave) == ["user.created"]


def test_future_training_date_is_refused(sqlite_enclave: Enclave) -> None:
    _create(sqlite_enclave, "rita", Role.RESEARCHER)
    with sqlite_enclave.db.transaction() as session:
        with pytest.raises(ValidationError, match="future"):
            people.record_accreditation(session, STAFF, "rita",
                                        date.today() + timedelta(days=1))
        with pytest.raises(NotFound, match="nobody"):
            people.record_accreditation(session, STAFF, "nobody", date.today())
    assert _count(sqlite_enclave, Accreditation) == 0


def test_actor_for_reflects_roles_and_latest_accreditation(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER)
    today = date.today()
    with enclave.db.sessions() as session:
        actor = people.actor_for(session, "rita")
    assert actor.roles == {Role.RESEARCHER}
    assert actor.active and actor.accredited_until is None and not actor.accredited
    recent, older = today - timedelta(days=30), today - timedelta(days=3000)
    with enclave.db.transaction() as session:
        people.record_accreditation(session, STAFF, "rita", recent)
        people.record_accreditation(session, STAFF, "rita", older)  # recorded later, older
    with enclave.db.sessions() as session:
        actor = people.actor_for(session, "rita")
        later = people.actor_for(session, "rita", today=recent + timedelta(days=1462))
    assert actor.accredited_until == recent + people.ACCREDITATION_VALIDITY
    assert actor.accredited and actor.today == today
    assert not later.accredited
    with enclave.db.transaction() as session:
        people.sync_roles_from_groups(session, ADMIN, "rita", ["researchers", "depp-staff"])
        people.get_user(session, "rita").active = False
    with enclave.db.sessions() as session:
        actor = people.actor_for(session, "rita")
        with pytest.raises(NotFound):
            people.actor_for(session, "nobody")
    assert actor.roles == {Role.RESEARCHER, Role.DEPP_STAFF}
    assert actor.active is False


# -- roles from the identity provider -------------------------------------------------------------

def test_groups_map_to_roles_and_changes_are_audited(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER)
    with enclave.db.transaction() as session:
        roles = people.sync_roles_from_groups(
            session, ADMIN, "rita", ["/depp-staff", "researchers", "/unrelated", "system"])
    assert roles == {Role.DEPP_STAFF, Role.RESEARCHER}
    with enclave.db.sessions() as session:
        assert people.roles_of(session, people.get_user(session, "rita").id) == roles
        event = session.execute(select(audit.AuditEvent)
                                .where(audit.AuditEvent.action == "user.roles_synced")
                                ).scalar_one()
    assert event.details == '{"after":["depp_staff","researcher"],"before":["researcher"]}'


def test_unchanged_roles_are_not_audited(enclave: Enclave) -> None:
    _create(enclave, "rita", Role.RESEARCHER, Role.OUTPUT_CHECKER)
    with enclave.db.transaction() as session:
        roles = people.sync_roles_from_groups(session, SYSTEM, "rita",
                                              ["/output-checkers", "researchers"])
    assert roles == {Role.RESEARCHER, Role.OUTPUT_CHECKER}
    assert _actions(enclave) == ["user.created"]


def test_every_identity_group_grants_its_role(sqlite_enclave: Enclave) -> None:
    _create(sqlite_enclave, "rita")
    with sqlite_enclave.db.transaction() as session:
        for group, role in {"researchers": Role.RESEARCHER, "depp-staff": Role.DEPP_STAFF,
                            "output-checkers": Role.OUTPUT_CHECKER,
                            "ethics-committee": Role.ETHICS_COMMITTEE,
                            "data-providers": Role.DATA_PROVIDER,
                            "enclave-admins": Role.PLATFORM_ADMIN}.items():
            assert people.sync_roles_from_groups(session, ADMIN, "rita", [f"/{group}"]) == {role}
        assert people.sync_roles_from_groups(session, ADMIN, "rita", []) == set()
        assert people.roles_of(session, people.get_user(session, "rita").id) == set()


def test_only_platform_admins_or_the_system_sync_roles(sqlite_enclave: Enclave) -> None:
    _create(sqlite_enclave, "rita", Role.RESEARCHER)
    with sqlite_enclave.db.transaction() as session, pytest.raises(PermissionDenied):
        people.sync_roles_from_groups(session, STAFF, "rita", ["enclave-admins"])
    with sqlite_enclave.db.sessions() as session:
        assert people.roles_of(session, people.get_user(session, "rita").id) == {
            Role.RESEARCHER}
    assert _actions(sqlite_enclave) == ["user.created"]
