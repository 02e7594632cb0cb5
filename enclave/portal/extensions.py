"""How pages plug into the portal: an extension brings routers, menu entries and messages.

The pages backed by the core (catalogue, account, audit trail) are extensions themselves; the
workflow pages (applications, decisions, output review) will be too, without touching the
application factory. Every entry's visibility is a ``can_*`` function of the one policy module,
and every route still checks its own ``check_*`` rule (see :mod:`enclave.portal.viewer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from enclave.core.policy import Actor


@dataclass(frozen=True)
class Entry:
    """A menu entry or a dashboard tile: a page, shown only to whom the policy lets in."""

    title: str  # message key
    path: str  # relative to the portal's prefix, without a leading slash
    visible: Callable[[Actor], bool]  # a policy ``can_*`` function
    description: str = ""  # message key (tiles)
    order: int = 100


@dataclass(frozen=True)
class Extension:
    """A set of pages and API endpoints with their menu entries, tiles and messages."""

    name: str
    pages: APIRouter | None = None  # mounted under the prefix; POST routes get the CSRF check
    api: APIRouter | None = None  # mounted under ``<prefix>api/v1``; bearer tokens only
    menu: tuple[Entry, ...] = ()
    tiles: tuple[Entry, ...] = ()
    messages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    templates: Path | None = None  # an extra Jinja2 folder, searched before the portal's
