"""Errors of the web portal; each message states the rule that was broken."""

from __future__ import annotations

from enclave.core.exceptions import EnclaveError


class PortalError(EnclaveError):
    """Base of the portal's own errors."""


class LoginRequired(PortalError):
    """No valid session or token: the person must log in at the hub first."""


class AccessDenied(PortalError):
    """The hub or the enclave's policy refuses this person here; the message gives the reason."""


class CsrfRejected(PortalError):
    """A form arrived without the token of the session that displayed it; nothing was done."""


class HubUnavailable(PortalError):
    """The hub's API did not answer or refused the portal's own credentials."""
