"""Server-side rendering: Jinja2 with autoescaping on, the DSFR layout, French or English.

Every value reaches the HTML through autoescaping (no ``|safe`` anywhere in the templates);
numbers and dates are formatted for the person's language; the menu shows only the entries
the policy lets the person open. Page responses are never cached and always carry the CSRF
cookie of the session, so every form on the page can be submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from enclave.portal.extensions import Entry, Extension
from enclave.portal.i18n import LANGUAGES, Messages
from enclave.portal.sessions import CSRF_COOKIE, SESSION_MAX_AGE
from enclave.portal.viewer import Viewer, language

TEMPLATES = Path(__file__).resolve().parent / "templates"


def format_number(value: int | float, lang: str) -> str:
    """``12 345`` in French (narrow no-break space), ``12,345`` in English."""
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    if lang == "fr":
        return text.replace(",", "\u202f").replace(".", ",")
    return text


def format_date(value: date | datetime | None, lang: str) -> str:
    """``28/11/2026`` in French, ``2026-11-28`` in English; datetimes add ``HH:MM UTC``."""
    if value is None:
        return "—"
    day = value.date() if isinstance(value, datetime) else value
    text = day.strftime("%d/%m/%Y") if lang == "fr" else day.isoformat()
    if isinstance(value, datetime):
        text += value.strftime(" %H:%M UTC")
    return text


class Renderer:
    """Renders the portal's pages for one application."""

    def __init__(self, prefix: str, extensions: tuple[Extension, ...],
                 messages: Messages, hub_home: str = "/hub/home") -> None:
        folders = [ext.templates for ext in extensions if ext.templates is not None]
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(p)) for p in folders]
                                + [FileSystemLoader(str(TEMPLATES))]),
            autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.prefix = prefix
        self.hub_home = hub_home
        self.messages = messages
        self.menu = sorted((e for ext in extensions for e in ext.menu), key=lambda e: e.order)
        self.tiles = sorted((e for ext in extensions for e in ext.tiles), key=lambda e: e.order)

    def url(self, path: str = "") -> str:
        """An absolute path inside the portal."""
        return self.prefix + path.lstrip("/")

    def visible_tiles(self, viewer: Viewer) -> list[Entry]:
        """The dashboard tiles this person may open."""
        return [e for e in self.tiles if e.visible(viewer.actor)]

    def _menu(self, request: Request, viewer: Viewer | None) -> list[dict[str, Any]]:
        if viewer is None:
            return []
        path = request.url.path
        items = []
        for entry in self.menu:
            if not entry.visible(viewer.actor):
                continue
            href = self.url(entry.path)
            current = path == href if not entry.path else path.startswith(href)
            items.append({"title": entry.title, "href": href, "current": current})
        return items

    def context(self, request: Request, viewer: Viewer | None, title: str,
                extra: Mapping[str, Any]) -> dict[str, Any]:
        """The variables every template sees."""
        lang = viewer.lang if viewer else language(request)
        t = self.messages.translator(lang)
        query = request.url.query
        return {
            "t": t, "lang": lang, "other_lang": next(x for x in LANGUAGES if x != lang),
            "viewer": viewer, "menu": self._menu(request, viewer), "url": self.url,
            "static": lambda p: self.url("static/" + p.lstrip("/")),
            "csrf_token": viewer.csrf_token if viewer else None,
            "current_path": request.url.path + ("?" + query if query else ""),
            "page_title": t(title), "title_key": title, "hub_home": self.hub_home,
            "num": lambda v: format_number(v, lang), "day": lambda v: format_date(v, lang),
            **extra,
        }

    def page(self, request: Request, viewer: Viewer | None, template: str, title: str,
             status: int = 200, **extra: Any) -> HTMLResponse:
        """A rendered page; refreshes the CSRF cookie of the session if it is missing."""
        html = self.env.get_template(template).render(
            self.context(request, viewer, title, extra))
        response = HTMLResponse(html, status_code=status)
        if viewer is not None and viewer.csrf_token \
                and request.cookies.get(CSRF_COOKIE) != viewer.csrf_token:
            portal = request.app.state.portal
            response.set_cookie(CSRF_COOKIE, viewer.csrf_token, max_age=SESSION_MAX_AGE,
                                path=self.prefix, httponly=True,
                                secure=portal.secure_cookies, samesite="strict")
        return response

    def error(self, request: Request, status: int, title: str, message: str,
              reason: str = "", viewer: Viewer | None = None) -> HTMLResponse:
        """An error page: what happened (message key), the reason given, where to go next."""
        return self.page(request, viewer, "error.html", title, status, code=status,
                         message=message, reason=reason)
