"""The access pages beyond "my projects" and the review queue, as one portal extension.

Researchers' application form and change requests (:mod:`~enclave.portal.pages_applications`),
DEPP staff's lifecycle and request pages (:mod:`~enclave.portal.pages_staff`), the oversight
pages (:mod:`~enclave.portal.pages_ethics`) and their REST API (:mod:`~enclave.portal.api_access`).
Menu entries and tiles are shown to whom the policy lets in.
"""

from __future__ import annotations

from fastapi import APIRouter

from enclave.core import policy
from enclave.core.policy import Actor
from enclave.portal import api_access, pages_applications, pages_ethics, pages_staff
from enclave.portal.extensions import Entry, Extension
from enclave.portal.i18n_access import ACCESS_MESSAGES


def can_see_register(actor: Actor) -> bool:
    """DEPP staff and the ethics committee see every application (``view_project`` of a
    project they are not a member of)."""
    return policy.can_view_project(actor, ())


def can_see_budgets(actor: Actor) -> bool:
    """DEPP staff and the ethics committee read every privacy budget ledger."""
    return policy.can_read_privacy_ledger(actor, ())


pages = APIRouter()
pages.include_router(pages_applications.router)
pages.include_router(pages_staff.router)
pages.include_router(pages_ethics.router)

ACCESS = Extension("access", pages=pages, api=api_access.router, menu=(
    Entry("nav.apply", "apply", policy.can_apply_for_project, order=21),
    Entry("nav.requests", "requests", policy.can_open_review_queue, order=31),
    Entry("nav.register", "register", can_see_register, order=40),
    Entry("nav.privacy", "privacy", can_see_budgets, order=45),
), tiles=(
    Entry("nav.apply", "apply", policy.can_apply_for_project, "tile.apply", order=21),
    Entry("nav.requests", "requests", policy.can_open_review_queue, "tile.requests", order=31),
    Entry("nav.register", "register", can_see_register, "tile.register", order=40),
    Entry("nav.privacy", "privacy", can_see_budgets, "tile.privacy", order=45),
), messages=ACCESS_MESSAGES)
