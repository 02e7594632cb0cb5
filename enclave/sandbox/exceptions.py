"""Errors of the sandbox layer; each message states the rule that was broken and what to do."""

from __future__ import annotations

from enclave.core.exceptions import EnclaveError


class SandboxError(EnclaveError):
    """The sandbox could not be prepared or started; nothing ran outside it."""


class SandboxUnavailable(SandboxError):
    """This machine cannot run the sandbox (not root, no bubblewrap, no user namespaces)."""


class AccountError(SandboxError):
    """A sandbox account or project group is unsafe, clashes with another, or cannot be made."""
