"""The portal application factory: FastAPI over an opened :class:`Enclave` and a hub client.

``create_app`` mounts the built-in extensions (home, catalogue, account, projects and review,
audit) and any others, the REST API and its OpenAPI document, the DSFR assets from the
installed npm package, the security headers and the error pages, then checks that every route
asks the policy (:func:`enclave.portal.viewer.check_routes`): an unsafe route stops the
application from starting instead of serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from enclave.core import policy
from enclave.core.context import Enclave
from enclave.core.exceptions import NotFound, PermissionDenied, ValidationError
from enclave.portal import api, auth_routes
from enclave.portal.access_extension import ACCESS
from enclave.portal.activity import ActivityModel
from enclave.portal.exceptions import AccessDenied, CsrfRejected, HubUnavailable, LoginRequired
from enclave.portal.extensions import Extension
from enclave.portal.i18n import Messages
from enclave.portal.identity import HubIdentity
from enclave.portal.pages_audit import AUDIT
from enclave.portal.pages_core import HOME
from enclave.portal.pages_outputs import OUTPUTS
from enclave.portal.pages_projects import PROJECTS
from enclave.portal.queries import TrailCounter
from enclave.portal.rendering import Renderer
from enclave.portal.runtime import Portal, portal_of
from enclave.portal.sessions import CookieSealer
from enclave.portal.viewer import Viewer, api_guard, check_routes, csrf_protect

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
DSFR_DIST = REPO_ROOT / "node_modules" / "@gouvfr" / "dsfr" / "dist"
STATIC = Path(__file__).resolve().parent / "static"
API_VERSION = "1.0.0"

#: Content Security Policy: our own scripts, styles, fonts and images only; nothing inline,
#: no framing, forms post only to the portal.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class SecurityHeaders:
    """ASGI middleware adding the security headers, and ``no-store`` outside static assets."""

    def __init__(self, app: ASGIApp, static_prefix: str, hsts: bool) -> None:
        self.app = app
        self.static_prefix = static_prefix
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                headers["Cache-Control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _json_error(status: int, code: str, message: str, fields: Sequence[dict[str, str]] = (),
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "fields": list(fields)}},
                        status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    def is_api(request: Request) -> bool:
        return portal_of(request).is_api(request.url.path)

    def page_error(request: Request, status: int, title: str, key: str,
                   reason: str = "") -> Response:
        return portal_of(request).renderer.error(request, status, title, key, reason)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return _json_error(401, "unauthenticated", str(exc),
                               headers={"WWW-Authenticate": 'Bearer realm="enclave-portal"'})
        return auth_routes.login_redirect(request)

    @app.exception_handler(AccessDenied)
    @app.exception_handler(PermissionDenied)
    async def denied(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return _json_error(403, "forbidden", str(exc))
        return page_error(request, 403, "error.denied_title", "error.denied", str(exc))

    @app.exception_handler(CsrfRejected)
    async def csrf(request: Request, exc: CsrfRejected) -> Response:
        log.warning("refused a form without its CSRF token: %s %s (%s)", request.method,
                    request.url.path, exc)
        return page_error(request, 403, "error.csrf_title", "error.csrf", str(exc))

    @app.exception_handler(HubUnavailable)
    async def hub_down(request: Request, exc: HubUnavailable) -> Response:
        log.error("hub unavailable: %s", exc)
        if is_api(request):
            return _json_error(502, "hub_unavailable", str(exc))
        return page_error(request, 502, "error.hub_title", "error.hub")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if is_api(request):
            return _json_error(404, "not_found", str(exc))
        return page_error(request, 404, "error.not_found_title", "error.not_found", str(exc))

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> Response:
        if is_api(request):
            return _json_error(422, "invalid", str(exc))
        return page_error(request, 400, "error.bad_filter_title", "error.bad_filter", str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = [{"field": ".".join(str(p) for p in err.get("loc", ())[1:]) or "request",
                   "message": str(err.get("msg", ""))} for err in exc.errors()]
        if is_api(request):
            return _json_error(422, "invalid_parameters",
                               "the request's parameters are invalid", fields)
        return page_error(request, 400, "error.bad_filter_title", "error.bad_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or not request.url.path.startswith(portal_of(request).prefix):
            return _json_error(exc.status_code, "http_error", str(exc.detail),
                               headers=dict(exc.headers or {}))
        if exc.status_code == 404:
            return page_error(request, 404, "error.not_found_title", "error.not_found")
        response = page_error(request, exc.status_code, "error.generic_title", "error.generic")
        response.headers.update(exc.headers or {})
        return response


def openapi_document(app: FastAPI, portal: Portal) -> dict[str, Any]:
    """The OpenAPI document of the REST API only (pages are not part of it)."""
    cached: dict[str, Any] | None = getattr(app.state, "openapi_document", None)
    if cached is not None:
        return cached
    doc = get_openapi(
        title="Enclave DEPP — API du portail / portal API", version=API_VERSION,
        description="Read the catalogue and, for the ethics committee, the audit trail; verify "
                    "the audit chain. Authenticate with a JupyterHub token "
                    "(`Authorization: Bearer <token>`) that carries the portal's access scope.",
        routes=app.routes)  # pages and this document are excluded from the schema
    doc["paths"] = {p: v for p, v in doc.get("paths", {}).items() if portal.is_api(p)}
    doc.setdefault("components", {})["securitySchemes"] = {
        "hubToken": {"type": "http", "scheme": "bearer",
                     "description": "A JupyterHub API or OAuth token of the caller"}}
    doc["security"] = [{"hubToken": []}]
    app.state.openapi_document = doc
    return doc


def create_app(enclave: Enclave, identity: HubIdentity, *, secret: bytes,
               extensions: Sequence[Extension] = (), dsfr_dir: Path | None = DSFR_DIST,
               secure_cookies: bool = False, prime_activity: bool = False,
               on_close: Callable[[], None] | None = None) -> FastAPI:
    """The portal for ``enclave``, authenticating people through ``identity`` (the hub)."""
    prefix = identity.prefix
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise ValueError(f"the service prefix {prefix!r} must start and end with '/'")
    every = (HOME, PROJECTS, ACCESS, AUDIT, OUTPUTS, *extensions)
    messages = Messages(*(ext.messages for ext in every))
    renderer = Renderer(prefix, every, messages, identity.hub_home_url)
    portal = Portal(enclave, identity, CookieSealer(secret), prefix, secure_cookies, renderer,
                    ActivityModel(enclave.db), every, TrailCounter())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if prime_activity:  # the first chart of a long chain reads it whole: do it now
            threading.Thread(target=portal.activity.snapshot, name="portal-activity",
                             daemon=True).start()
        yield
        if on_close is not None:
            on_close()

    app = FastAPI(title="Enclave DEPP — portail", openapi_url=None, docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.portal = portal
    base = prefix.rstrip("/")
    csrf = [Depends(csrf_protect)]
    app.include_router(auth_routes.router, prefix=base, dependencies=csrf)
    app.include_router(api.router, prefix=portal.api_prefix)
    for ext in every:
        if ext.pages is not None:
            app.include_router(ext.pages, prefix=base, dependencies=csrf)
        if ext.api is not None:
            app.include_router(ext.api, prefix=portal.api_prefix)

    @app.get(portal.api_prefix + "/openapi.json", include_in_schema=False)
    def openapi(viewer: Annotated[Viewer, api_guard(policy.check_log_in)]) -> JSONResponse:
        """The OpenAPI document (for people who may use the portal)."""
        return JSONResponse(openapi_document(app, portal))

    if dsfr_dir is not None and (dsfr_dir / "dsfr.min.css").exists():
        app.mount(prefix + "static/dsfr", StaticFiles(directory=dsfr_dir), name="dsfr")
    else:
        log.warning("DSFR assets not found in %s: pages are served without their styles "
                    "(run 'npm ci')", dsfr_dir)
    app.mount(prefix + "static/portal", StaticFiles(directory=STATIC), name="portal-static")
    _install_error_handlers(app)
    app.add_middleware(SecurityHeaders, static_prefix=prefix + "static/", hsts=secure_cookies)
    app.state.checked_routes = check_routes(app, portal)
    return app
