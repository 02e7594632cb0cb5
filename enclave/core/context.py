"""The enclave's handles in one place: settings, database, key store and audit chain.

Edges (CLI, hub, portal) open one :class:`Enclave` and pass it to workflows; nothing else holds
global state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from enclave.core import db as dbmod
from enclave.core.audit import AuditChain
from enclave.core.keystore import KeyStore
from enclave.core.settings import Settings, load_settings


@dataclass
class Enclave:
    """An opened enclave: the handles every workflow call needs."""

    settings: Settings
    db: dbmod.Database
    keys: KeyStore
    _chain: AuditChain | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings | None = None, *, check_schema: bool = True,
             env: dict[str, str] | None = None, **engine_kwargs: Any) -> Enclave:
        """Open the enclave; refuse a database that is not at the code's migration head."""
        settings = settings or load_settings()
        database = dbmod.Database(settings.effective_database_url, **engine_kwargs)
        if check_schema:
            try:
                dbmod.require_current(database)
            except BaseException:
                database.dispose()
                raise
        return cls(settings, database, KeyStore(settings, env))

    @property
    def chain(self) -> AuditChain:
        """The audit chain, with the enclave's signer for checkpoints."""
        if self._chain is None:
            self._chain = AuditChain(self.db, self.settings.checkpoints_dir, self.keys.signer())
        return self._chain

    def checkpoint_if_due(self) -> None:
        """Sign a checkpoint when enough events were appended since the last one."""
        self.chain.maybe_checkpoint(self.settings.audit_checkpoint_every)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()


def initialise(settings: Settings, env: dict[str, str] | None = None) -> list[str]:
    """Create the home folders, demo keys (demo mode only) and the schema; idempotent."""
    done = []
    for path in settings.all_dirs():
        if not path.exists():
            path.mkdir(parents=True)
            done.append(f"created {path}")
    # Second barrier behind the sandbox's namespaces: sandbox accounts may traverse home and
    # projects/ to reach their own project's folders, and read nothing else.
    for path, mode in ((settings.home, 0o711), (settings.keys_dir, 0o700),
                       (settings.raw_dir, 0o700),  # the raw zone holds identifiers in clear
                       (settings.projects_dir, 0o711), (settings.releases_dir, 0o700),
                       (settings.checkpoints_dir, 0o700), (settings.run_dir, 0o700)):
        os.chmod(path, mode)
    keys = KeyStore(settings, env)
    if keys.ensure_demo_master_key():
        done.append(f"generated the demo master key in {settings.keys_dir} (demo mode only)")
    if keys.ensure_signing_key():
        done.append("generated the Ed25519 signing key for checkpoints and releases")
    database = dbmod.Database(settings.effective_database_url)
    try:
        before = dbmod.current_revision(database)
        dbmod.upgrade(database)
        after = dbmod.current_revision(database)
        if before != after:
            done.append(f"database migrated from {before or 'empty'} to {after}")
    finally:
        database.dispose()
    if settings.effective_database_url.startswith("sqlite:///"):
        os.chmod(settings.effective_database_url.removeprefix("sqlite:///"), 0o600)
    return done
