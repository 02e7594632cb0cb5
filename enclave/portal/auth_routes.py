"""Logging in through the hub (OAuth 2 authorization code with PKCE), out, and the language.

A page request without a session is sent to the hub's authorize URL with a random ``state``
and a PKCE challenge, both sealed in a short-lived cookie; the hub sends the browser back to
``oauth_callback``, which checks the state, exchanges the code for the person's token and seals
it in the session cookie (HttpOnly, SameSite=Lax, Secure in production, path = the portal).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from enclave.core import policy
from enclave.portal.i18n import LANGUAGES
from enclave.portal.runtime import Portal, portal_of
from enclave.portal.sessions import (
    CSRF_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    STATE_COOKIE,
    STATE_MAX_AGE,
    local_path,
    new_session_id,
)
from enclave.portal.viewer import Viewer, page_guard

router = APIRouter()


def _cookie(portal: Portal, response: Response, name: str, value: str, max_age: int,
            samesite: str = "lax") -> None:
    response.set_cookie(name, value, max_age=max_age, path=portal.prefix, httponly=True,
                        secure=portal.secure_cookies, samesite=samesite)  # type: ignore[arg-type]


def login_redirect(request: Request) -> Response:
    """Send the browser to the hub to log in, remembering where it was going."""
    portal = portal_of(request)
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    next_url = local_path(target, portal.prefix) if request.method == "GET" else portal.prefix
    state = secrets.token_urlsafe(24)
    verifier, challenge = portal.identity.new_pkce()
    sealed = portal.sealer.seal("oauth-state", {"s": state, "n": next_url, "v": verifier},
                                STATE_MAX_AGE)
    response = RedirectResponse(portal.identity.authorization_url(state, challenge), 302)
    _cookie(portal, response, STATE_COOKIE, sealed, STATE_MAX_AGE)
    return response


@router.get("/oauth_callback", include_in_schema=False)
async def oauth_callback(request: Request, code: str | None = None, state: str | None = None,
                         error: str | None = None) -> Response:
    """Finish the hub's login: check the state, get the token, open the session."""
    portal = portal_of(request)
    renderer = portal.renderer
    saved = portal.sealer.open("oauth-state", request.cookies.get(STATE_COOKIE))
    if error or not code or not state or saved is None or not isinstance(saved.get("s"), str) \
            or not hmac.compare_digest(saved["s"].encode(), state.encode()):
        response: Response = renderer.error(request, 403, "error.login_title",
                                            "error.login_state")
        response.delete_cookie(STATE_COOKIE, path=portal.prefix)
        return response
    token = await portal.identity.token_for_code(code, str(saved.get("v", "")))
    user = await portal.identity.user_for_token(token)
    if user is None:
        return renderer.error(request, 403, "error.login_title", "error.login_state")
    session_id = new_session_id()
    sealed = portal.sealer.seal("session", {"t": token, "sid": session_id, "u": user.name},
                                SESSION_MAX_AGE)
    response = RedirectResponse(local_path(str(saved.get("n")), portal.prefix), 303)
    _cookie(portal, response, SESSION_COOKIE, sealed, SESSION_MAX_AGE)
    _cookie(portal, response, CSRF_COOKIE, portal.sealer.csrf_token(session_id),
            SESSION_MAX_AGE, samesite="strict")
    response.delete_cookie(STATE_COOKIE, path=portal.prefix)
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    """Forget the portal's session (the form's token was checked) and log out of the hub."""
    portal = portal_of(request)
    response = RedirectResponse(portal.identity.hub_logout_url, 303)
    for name in (SESSION_COOKIE, CSRF_COOKIE, STATE_COOKIE):
        response.delete_cookie(name, path=portal.prefix)
    return response


@router.post("/lang", include_in_schema=False)
def choose_language(request: Request,
                    viewer: Annotated[Viewer, page_guard(policy.check_log_in)],
                    lang: Annotated[str, Form(max_length=5)] = "fr",
                    next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Remember the person's language and go back to the page they were on."""
    portal = portal_of(request)
    response = RedirectResponse(local_path(next, portal.prefix), 303)
    if lang in LANGUAGES:
        _cookie(portal, response, LANG_COOKIE, lang, 365 * 24 * 3600)
    return response


@router.get("/healthz", include_in_schema=False)
def healthz() -> PlainTextResponse:
    """Liveness: answers without reading anything (also the benchmark's baseline)."""
    return PlainTextResponse("ok")
