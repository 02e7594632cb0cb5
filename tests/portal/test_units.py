"""The portal's small pieces on their own: sealed cookies, redirects, activity, charts, i18n,
the hub configuration."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from enclave.core import audit
from enclave.core.exceptions import SettingsError
from enclave.core.policy import Role
from enclave.core.settings import load_settings
from enclave.portal import charts, hubconfig
from enclave.portal.activity import ActivityModel
from enclave.portal.forms import parse_audit_filter
from enclave.portal.i18n import EN, FR, Messages
from enclave.portal.i18n_access import ACCESS_MESSAGES
from enclave.portal.rendering import TEMPLATES, format_number
from enclave.portal.sessions import CookieSealer, load_or_create_secret, local_path
from tests.portal.factories import PREFIX, SECRET, Portal

# -- sealed cookies and redirects -----------------------------------------------------------------


def test_a_sealed_cookie_opens_only_for_its_purpose_and_until_it_expires() -> None:
    sealer = CookieSealer(SECRET)
    value = sealer.seal("session", {"u": "alice"}, 60, now=1000)
    assert sealer.open("session", value, now=1030)["u"] == "alice"
    assert sealer.open("oauth-state", value, now=1030) is None
    assert sealer.open("session", value, now=1061) is None
    assert CookieSealer(b"another-secret-of-thirty-two-by!").open("session", value, 1030) is None
    assert sealer.open("session", "not base64 !", 1030) is None
    assert sealer.open("session", "x" * 5000, 1030) is None


@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_cookies_never_open(raw: bytes) -> None:
    import base64

    assert CookieSealer(SECRET).open("session", base64.urlsafe_b64encode(raw).decode()) is None


def test_csrf_tokens_are_bound_to_the_session() -> None:
    sealer = CookieSealer(SECRET)
    token = sealer.csrf_token("sid-1")
    assert sealer.csrf_ok("sid-1", token, token)
    assert not sealer.csrf_ok("sid-2", token, token)
    assert not sealer.csrf_ok("sid-1", token, None)
    assert not sealer.csrf_ok("sid-1", None, token)
    assert not sealer.csrf_ok("sid-1", token + "é", token)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(SettingsError):
        CookieSealer(b"short")


def test_the_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "run" / "portal_cookie_secret"
    first = load_or_create_secret(path)
    assert len(first) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_secret(path) == first
    os.chmod(path, 0o644)
    with pytest.raises(SettingsError, match="owner only"):
        load_or_create_secret(path)


@pytest.mark.parametrize(("candidate", "expected"), [
    (PREFIX + "audit?actor=a", PREFIX + "audit?actor=a"),
    (PREFIX, PREFIX),
    (None, PREFIX),
    ("https://evil.example" + PREFIX, PREFIX),
    ("//evil.example" + PREFIX, PREFIX),
    ("/hub/admin", PREFIX),
    (PREFIX + "../../hub/admin", PREFIX),
    (PREFIX + "%2E%2E/hub", PREFIX),
    (PREFIX + "a\\b", PREFIX),
    (PREFIX + "a\r\nSet-Cookie: x=y", PREFIX),
])
def test_redirects_stay_inside_the_portal(candidate: str | None, expected: str) -> None:
    assert local_path(candidate, PREFIX) == expected


# -- the audit filter form ------------------------------------------------------------------------

def test_the_filter_form_reports_each_error_on_its_field() -> None:
    form = parse_audit_filter({"actor": "a\x00b", "project": "p" * 101, "date_from": "2026-1-1",
                               "date_to": "2026-01-01", "before": "12"})
    assert form.errors == {"actor": "error.control_chars", "project": "error.too_long",
                           "date_from": "error.date"}
    assert form.filter.is_empty() and form.before is None
    ok = parse_audit_filter({"actor": " claire ", "date_from": "2026-01-01", "before": "12",
                             "after": "-3"})
    assert ok.filter.actor == "claire" and ok.filter.date_from == date(2026, 1, 1)
    assert ok.before == 12 and ok.after is None


# -- activity, read from the chain ----------------------------------------------------------------

def _move(session, project: str, to: str, prev: str = "x") -> None:  # type: ignore[no-untyped-def]
    audit.record(session, actor="t", action=f"project.{to}", object_type="project",
                 object_id=project, project_id=project, details={"from": prev, "to": to})


def test_activity_is_folded_incrementally_and_recounted_after_a_rewrite(portal: Portal) -> None:
    db = portal.enclave.db
    model = ActivityModel(db)
    first = model.snapshot()
    assert dict(first.by_state)["active"] == 1
    with db.transaction() as session:
        _move(session, "prj-9", "submitted")
        _move(session, "prj-9", "approved")
        _move(session, "prj-9", "active")
        _move(session, "prj-0001", "suspended", "active")
    second = model.snapshot()
    assert dict(second.by_state)["active"] == 1 and dict(second.by_state)["suspended"] == 2
    assert second.active[-1][1] == 1 and second.events == first.events + 4
    assert second.decisions == first.decisions + 1
    with db.transaction() as session:  # rewrite the event the fold stopped at
        session.execute(text("UPDATE audit_events SET hash = :h WHERE seq = :s"),
                        {"h": "0" * 64, "s": second.head_seq})
    third = model.snapshot()
    assert third.events == second.events  # recounted from scratch, not double-counted


def test_time_to_decision_counts_days_from_submission(portal: Portal) -> None:
    model = ActivityModel(portal.enclave.db)
    figures = model.snapshot(today=date.today() + timedelta(days=1))
    assert figures.decisions == 3  # prj-0001 and prj-0002 approved, prj-0003 rejected
    assert figures.median_decision_days == 0.0  # all on the day they were submitted
    assert [n for _bucket, n in figures.decision_buckets] == [3, 0, 0, 0]


# -- charts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("maximum", "step"), [(0, 1), (3, 1), (10, 5), (97, 50), (1234, 500),
                                                (80000, 20000)])
def test_axis_steps_are_round(maximum: int, step: int) -> None:
    assert charts.nice_step(maximum) == step


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=120))
def test_charts_stay_inside_their_frame(values: list[int]) -> None:
    data = [(str(i), v) for i, v in enumerate(values)]
    for chart in (charts.columns(data), charts.horizontal_bars(data[:12])):
        for bar in chart.bars:
            assert bar.x >= chart.plot_left - 1e-6 and bar.width >= 0 and bar.height >= 0
            assert bar.x + bar.width <= chart.plot_right + 1e-6
            assert bar.y + bar.height <= chart.plot_bottom + 1e-6
    line = charts.line(data)
    for point in line.points.split():
        x, y = map(float, point.split(","))
        assert line.plot_left - 1e-6 <= x <= line.plot_right + 1e-6
        assert line.plot_top - 1e-6 <= y <= line.plot_bottom + 1e-6


# -- language catalogue ---------------------------------------------------------------------------

def test_french_and_english_have_the_same_keys() -> None:
    assert set(FR) == set(EN)
    for key in FR:
        fields = sorted(re.findall(r"{(\w+)}", FR[key]))
        assert fields == sorted(re.findall(r"{(\w+)}", EN[key])), key


def test_every_key_used_by_a_template_exists() -> None:
    used = set()
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\('([a-z_]+(?:\.[a-z_]+)+)'[,)]", source))
    known = set(Messages(ACCESS_MESSAGES).tables["fr"])
    assert used and used <= known, sorted(used - known)


def test_a_missing_key_is_an_error_not_a_silent_fallback() -> None:
    t = Messages().translator("en")
    with pytest.raises(KeyError):
        t("no.such.key")
    assert t("no.such.key", default="x") == "x"
    with pytest.raises(ValueError, match="unknown language"):
        Messages({"de": {"a": "b"}})


def test_numbers_follow_the_language() -> None:
    assert format_number(12345, "fr") == "12\u202f345"
    assert format_number(12345, "en") == "12,345"
    assert format_number(2.5, "fr") == "2,5"


def test_no_template_disables_autoescaping() -> None:
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source


# -- the hub's configuration ----------------------------------------------------------------------

def test_the_portal_is_a_managed_service_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path / "var")
    spec = hubconfig.service(settings, port=18123)
    assert spec["name"] == "portal" and spec["url"] == "http://127.0.0.1:18123"
    assert spec["command"][1:4] == ["-m", "uvicorn", "--factory"]
    assert "enclave.portal.service:from_environment" in spec["command"]
    assert spec["command"][spec["command"].index("--host") + 1] == "127.0.0.1"
    assert spec["oauth_no_confirm"] is True
    assert set(spec["oauth_client_allowed_scopes"]) == {"read:users:groups!user",
                                                        "read:roles:users!user"}
    assert spec["environment"]["ENCLAVE_HOME"] == str(settings.home)


def test_the_portal_does_not_inherit_the_hubs_openid_connect_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_OIDC_CLIENT_SECRET", "client-secret-of-the-hub")
    monkeypatch.setenv("ENCLAVE_LOG_LEVEL", "INFO")
    spec = hubconfig.service(load_settings(env={}, home=tmp_path / "var"), port=18124)
    assert "ENCLAVE_OIDC_CLIENT_SECRET" not in spec["environment"]
    assert spec["environment"]["ENCLAVE_LOG_LEVEL"] == "INFO"


def test_the_access_role_names_the_enclaves_people_not_service_accounts() -> None:
    role = hubconfig.access_role()
    assert role["scopes"] == ["access:services!service=portal", "read:roles:users!user"]
    assert set(role["groups"]) == {"researchers", "depp-staff", "output-checkers",
                                   "ethics-committee", "enclave-admins"}
    assert Role.DATA_PROVIDER not in {r for g, r in hubconfig.policy.GROUP_ROLES.items()
                                      if g in role["groups"]}


def test_the_hub_configuration_registers_the_portal() -> None:
    source = (Path(hubconfig.__file__).parents[1] / "hub" / "jupyterhub_config.py").read_text()
    assert "c.JupyterHub.services.append(portal.service(settings))" in source
    assert "c.JupyterHub.load_roles.append(portal.access_role())" in source


def test_every_role_kind_unit_and_state_has_words_in_both_languages() -> None:
    from enclave.core.catalogue import DatasetUnit, VariableKind
    from enclave.portal.activity import STATE_ORDER

    keys = ({f"role.{r.value}" for r in Role} | {f"kind.{k.value}" for k in VariableKind}
            | {f"kind.{k.value}.help" for k in VariableKind}
            | {f"unit.{u.value}" for u in DatasetUnit} | {f"state.{s}" for s in STATE_ORDER})
    assert keys <= set(FR) and keys <= set(EN)
