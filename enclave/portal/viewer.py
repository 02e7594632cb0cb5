"""Who is asking and whether they may: the dependencies every route declares.

A page route declares ``viewer: Annotated[Viewer, page_guard(policy.check_...)]`` and an API
route ``api_guard(policy.check_...)``: the hub identifies the person (session cookie for pages,
bearer token for the API, never the other way round), the enclave database says who they are
now, and the policy rule decides. :func:`check_routes` refuses to start an application in which
a route declares no rule, an API route reads cookies, or a page accepts a POST without the CSRF
check: deny by default is enforced when the app is built, not remembered route by route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from enclave.core.exceptions import NotFound, PermissionDenied
from enclave.core.policy import Actor
from enclave.portal import queries
from enclave.portal.exceptions import AccessDenied, CsrfRejected, LoginRequired
from enclave.portal.i18n import DEFAULT_LANGUAGE, LANGUAGES
from enclave.portal.identity import HubUser
from enclave.portal.runtime import Portal, portal_of
from enclave.portal.sessions import CSRF_COOKIE, CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE

#: Routes (relative to the prefix) that need no policy rule: finishing a login, logging out,
#: and a liveness probe that reads nothing.
PUBLIC_ROUTES = frozenset({"oauth_callback", "logout", "healthz"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 1 << 20
#: A multipart form may carry the application's PDF protocol (20 MiB at most) and its fields.
MAX_UPLOAD_BYTES = 21 << 20
#: The application form lists every catalogued variable with a box and a justification.
MAX_FORM_FIELDS = 400
_AUTH_HEADER = re.compile(r"(?:bearer|token)\s+(\S{1,4096})", re.IGNORECASE)


@dataclass(frozen=True)
class Viewer:
    """The person behind a request, as the policy sees them, and how to talk to them."""

    actor: Actor
    display_name: str
    lang: str
    session_id: str | None = None  # None for API calls (bearer token)
    csrf_token: str | None = None


@dataclass(frozen=True)
class _Identified:
    user: HubUser
    session_id: str | None


def language(request: Request) -> str:
    """The person's language: their choice (cookie) or French."""
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


async def _session_identity(request: Request) -> _Identified:
    portal = portal_of(request)
    session = portal.sealer.open("session", request.cookies.get(SESSION_COOKIE))
    if session is None or not isinstance(session.get("t"), str) \
            or not isinstance(session.get("sid"), str):
        raise LoginRequired("no valid portal session")
    user = await portal.identity.user_for_token(session["t"])
    if user is None or user.name != session.get("u"):
        raise LoginRequired("the hub no longer recognises this session")
    if not portal.identity.may_use_portal(user):
        raise AccessDenied(f"{user.name} may not use the portal (the hub granted no access "
                           "to this service)")
    return _Identified(user, session["sid"])


async def _token_identity(request: Request) -> _Identified:
    portal = portal_of(request)
    match = _AUTH_HEADER.fullmatch(request.headers.get("authorization", "").strip())
    if match is None:
        raise LoginRequired("an API call needs the header 'Authorization: Bearer <hub token>'")
    user = await portal.identity.user_for_token(match.group(1))
    if user is None:
        raise LoginRequired("the token is unknown to the hub or has expired")
    if not portal.identity.may_use_portal(user):
        raise AccessDenied(f"the token of {user.name} does not carry the portal's access scope")
    return _Identified(user, None)


def _viewer(portal: Portal, request: Request, ident: _Identified) -> Viewer:
    if ident.user.kind != "user":
        raise AccessDenied(f"{ident.user.name} is a hub {ident.user.kind}, not a person")
    try:
        with portal.enclave.db.sessions() as session:
            who = queries.person(session, ident.user.name)
    except NotFound:
        raise AccessDenied(f"{ident.user.name} is not known to the enclave") from None
    csrf = portal.sealer.csrf_token(ident.session_id) if ident.session_id else None
    return Viewer(who.actor, who.display_name, language(request), ident.session_id, csrf)


def page_viewer(request: Request,
                ident: Annotated[_Identified, Depends(_session_identity)]) -> Viewer:
    """The person behind a page request (session cookie); runs in a worker thread."""
    return _viewer(portal_of(request), request, ident)


def api_viewer(request: Request,
               ident: Annotated[_Identified, Depends(_token_identity)]) -> Viewer:
    """The person behind an API call (bearer token only; cookies are ignored)."""
    return _viewer(portal_of(request), request, ident)


def _decide(check: Callable[[Actor], None], viewer: Viewer) -> Viewer:
    try:
        check(viewer.actor)
    except PermissionDenied as exc:
        raise AccessDenied(str(exc)) from None
    return viewer


def page_guard(check: Callable[[Actor], None]) -> Any:
    """A dependency giving the page's viewer once ``check`` (a policy rule) allowed them."""
    def guard(viewer: Annotated[Viewer, Depends(page_viewer)]) -> Viewer:
        return _decide(check, viewer)

    guard.__policy_check__ = check  # type: ignore[attr-defined]
    return Depends(guard)


def api_guard(check: Callable[[Actor], None]) -> Any:
    """A dependency giving the API caller once ``check`` (a policy rule) allowed them."""
    def guard(viewer: Annotated[Viewer, Depends(api_viewer)]) -> Viewer:
        return _decide(check, viewer)

    guard.__policy_check__ = check  # type: ignore[attr-defined]
    return Depends(guard)


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing page request that lacks its session's token (nothing is done).

    The form field and the cookie must both equal the token derived from the session; as a
    second line, the browser's ``Sec-Fetch-Site`` must not say another site, and an ``Origin``
    header, when it names one, must name this host.
    """
    if request.method in SAFE_METHODS:
        return
    portal = portal_of(request)
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise CsrfRejected("the browser says the form was sent from another site")
    origin = request.headers.get("origin")
    # "null" is what browsers send under Referrer-Policy: no-referrer; the token decides then.
    if origin is not None and origin != "null":
        hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
        if urlsplit(origin).netloc not in hosts:
            raise CsrfRejected(f"the form was sent from another site ({origin[:100]!r}, "
                               f"this site is {sorted(h for h in hosts if h)!r})")
    length = request.headers.get("content-length")
    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    limit = MAX_UPLOAD_BYTES if multipart else MAX_FORM_BYTES
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise CsrfRejected("the form is too large")
    session = portal.sealer.open("session", request.cookies.get(SESSION_COOKIE))
    if session is None or not isinstance(session.get("sid"), str):
        raise CsrfRejected("the form has no session")
    form = await request.form(max_files=10, max_fields=MAX_FORM_FIELDS)
    if not portal.sealer.csrf_ok(session["sid"], form.get(CSRF_FIELD),
                                 request.cookies.get(CSRF_COOKIE)):
        await form.close()  # uploaded files are spooled to disk: release them now
        raise CsrfRejected("the form's security token is missing or does not match the session")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def check_routes(app: FastAPI, portal: Portal) -> int:
    """Refuse to serve routes that would bypass the policy, the CSRF check or token auth.

    Walks the effective routes (with the dependencies their routers add) and returns how many
    it checked, so that a test notices if the walk ever stops seeing them.
    """
    problems = []
    checked = 0
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant):
            continue  # static files: no code of ours runs
        checked += 1
        path, methods = str(route.path), set(route.methods or ())
        calls = list(_calls(dependant))
        relative = path.removeprefix(portal.prefix)
        if relative not in PUBLIC_ROUTES and not any(
                getattr(call, "__policy_check__", None) for call in calls):
            problems.append(f"{path} declares no policy rule (use page_guard/api_guard)")
        if portal.is_api(path):
            if page_viewer in calls or csrf_protect in calls:
                problems.append(f"{path} is an API route but reads the session cookie")
        else:
            if api_viewer in calls:
                problems.append(f"{path} is a page but accepts bearer tokens")
            if methods - SAFE_METHODS and csrf_protect not in calls:
                problems.append(f"{path} accepts {sorted(methods)} without the CSRF check")
    if problems:
        raise RuntimeError("unsafe portal routes: " + "; ".join(problems))
    return checked
