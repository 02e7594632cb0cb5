"""Errors of the enclave core; each message states the rule that was broken and what to do."""


class EnclaveError(Exception):
    """Base of every error the enclave raises on purpose."""


class SettingsError(EnclaveError):
    """A setting is unknown, malformed, or missing where production needs it."""


class DatabaseNotReadyError(EnclaveError):
    """The database is missing or not at the code's migration head."""


class KeyStoreError(EnclaveError):
    """A key is missing, malformed, destroyed, or cannot be unwrapped."""


class AuditChainError(EnclaveError):
    """The audit chain cannot be appended to or checkpointed."""


class CatalogueError(EnclaveError):
    """A raw-zone dataset or its metadata is missing, malformed or inconsistent."""


class PermissionDenied(EnclaveError):
    """The actor may not perform this action; the message gives the reason."""


class InvalidTransition(EnclaveError):
    """The object's current state does not allow the requested move."""


class NotFound(EnclaveError):
    """The object asked for does not exist (or is not visible to the actor)."""


class ValidationError(EnclaveError):
    """Input was rejected; nothing was stored."""
