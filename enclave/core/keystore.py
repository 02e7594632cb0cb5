"""The key store: a master key, per-project data keys wrapped with AES-GCM, and the signing key.

The master key comes from ``ENCLAVE_MASTER_KEY`` (64 hex characters or 43-44 base64url
characters) or, in demo mode only, from a 0600 file generated once under ``var/keys``.
Project data keys (256-bit) are stored wrapped by the master key with the key id, project and
version bound as associated data, so a wrapped key moved to another row does not unwrap.
Destroying a project's keys erases the wrapped bytes (crypto-shredding): its pseudonyms can
then never be recomputed. No key material is ever logged, printed or put in an environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from enclave.core import audit, policy
from enclave.core.db import Base, UTCDateTime, utcnow
from enclave.core.exceptions import KeyStoreError
from enclave.core.files import write_atomic
from enclave.core.policy import Actor
from enclave.core.settings import Mode, Settings

MASTER_KEY_ENV = "ENCLAVE_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
SIGNING_KEY_FILE = "signing-key.wrapped"
SIGNING_PUB_FILE = "signing-key.pub"
KEY_BYTES = 32


class ProjectKey(Base):
    """A wrapped 256-bit data key of one project; ``wrapped`` is NULL once destroyed."""

    __tablename__ = "project_keys"

    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(40), default="AES-256-GCM-wrapped")
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("project_id", "version"),)


@dataclass(frozen=True)
class DataKey:
    """An unwrapped project key in memory; its repr never shows the bytes."""

    key_id: str
    project_id: str
    version: int
    material: bytes = field(repr=False)

    def __str__(self) -> str:
        return f"DataKey({self.key_id}, project={self.project_id}, v{self.version})"


def _decode_master(raw: str) -> bytes:
    raw = raw.strip()
    try:
        if len(raw) == 2 * KEY_BYTES:
            key = bytes.fromhex(raw)
        else:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise KeyStoreError(f"{MASTER_KEY_ENV} is not hex or base64url") from None
    if len(key) != KEY_BYTES:
        raise KeyStoreError(f"{MASTER_KEY_ENV} must encode exactly {KEY_BYTES} bytes "
                            f"(got {len(key)})")
    return key


def generate_master_key_text() -> str:
    """A new master key as 64 hex characters, for an operator to store in their secret store."""
    return secrets.token_bytes(KEY_BYTES).hex()


class KeyStore:
    """Access to the master key, project data keys and the enclave's Ed25519 signing key."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self._env = os.environ if env is None else env
        self._master: bytes | None = None

    # -- master key ------------------------------------------------------------------------
    def _master_key(self) -> bytes:
        if self._master is not None:
            return self._master
        raw = self._env.get(MASTER_KEY_ENV)
        if raw:
            self._master = _decode_master(raw)
            return self._master
        path = self.settings.keys_dir / MASTER_KEY_FILE
        if self.settings.mode is Mode.PRODUCTION:
            raise KeyStoreError(
                f"production mode needs the master key in {MASTER_KEY_ENV} (from your secret "
                "store); generate one with 'enclave keys new-master' and keep it outside the "
                "enclave host's disk")
        if not path.exists():
            raise KeyStoreError(f"no master key: run 'enclave init' (demo mode creates {path})")
        self._check_private(path)
        self._master = _decode_master(path.read_text(encoding="ascii"))
        return self._master

    @staticmethod
    def _check_private(path: Path) -> None:
        if path.stat().st_mode & 0o077:
            raise KeyStoreError(f"{path} is readable by group or others; chmod 600 it")

    def ensure_demo_master_key(self) -> bool:
        """Create the demo master key file (0600) once; True if it was created now."""
        if self._env.get(MASTER_KEY_ENV):
            return False
        if self.settings.mode is Mode.PRODUCTION:
            self._master_key()  # raises with the instructions
        path = self.settings.keys_dir / MASTER_KEY_FILE
        if path.exists():
            return False
        self.settings.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.settings.keys_dir, 0o700)
        write_atomic(path, (generate_master_key_text() + "\n").encode("ascii"), mode=0o600)
        return True

    def _aead(self) -> AESGCM:
        return AESGCM(self._master_key())

    def _wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead().encrypt(nonce, plaintext, aad)

    def _unwrap(self, blob: bytes, aad: bytes, what: str) -> bytes:
        try:
            return self._aead().decrypt(blob[:12], blob[12:], aad)
        except InvalidTag:
            raise KeyStoreError(f"{what} cannot be unwrapped: wrong master key or the wrapped "
                                "key was altered or moved") from None

    # -- project data keys -----------------------------------------------------------------
    @staticmethod
    def _aad(key_id: str, project_id: str, version: int) -> bytes:
        return f"enclave-project-key/1|{key_id}|{project_id}|{version}".encode()

    def create_project_key(self, session: Session, project_id: str, actor: str) -> DataKey:
        """Create the next version of a project's data key, audited in the caller's transaction."""
        last = session.execute(
            select(ProjectKey.version).where(ProjectKey.project_id == project_id)
            .order_by(ProjectKey.version.desc()).limit(1)).scalar()
        version = (last or 0) + 1
        key_id = str(uuid.uuid4())
        material = secrets.token_bytes(KEY_BYTES)
        session.add(ProjectKey(key_id=key_id, project_id=project_id, version=version,
                               wrapped=self._wrap(material, self._aad(key_id, project_id,
                                                                      version)),
                               created_at=utcnow()))
        audit.record(session, actor=actor, action="key.created", object_type="project_key",
                     object_id=key_id, project_id=project_id, details={"version": version})
        return DataKey(key_id, project_id, version, material)

    def project_key(self, session: Session, project_id: str,
                    version: int | None = None) -> DataKey:
        """The project's current (or given) data key, unwrapped; destroyed keys raise."""
        query = select(ProjectKey).where(ProjectKey.project_id == project_id)
        if version is not None:
            query = query.where(ProjectKey.version == version)
        row = session.execute(query.order_by(ProjectKey.version.desc()).limit(1)).scalar()
        if row is None:
            raise KeyStoreError(f"project {project_id} has no data key"
                                + (f" version {version}" if version else ""))
        if row.wrapped is None:
            raise KeyStoreError(f"the data key v{row.version} of project {project_id} was "
                                "destroyed; its pseudonyms cannot be recomputed")
        material = self._unwrap(row.wrapped, self._aad(row.key_id, project_id, row.version),
                                f"data key {row.key_id}")
        return DataKey(row.key_id, project_id, row.version, material)

    def destroy_project_keys(self, session: Session, project_id: str, actor: Actor,
                             reason: str) -> list[str]:
        """Erase every wrapped key of the project (crypto-shredding); returns the key ids."""
        policy.check_destroy_project_key(actor)
        rows = session.execute(select(ProjectKey).where(ProjectKey.project_id == project_id,
                                                        ProjectKey.wrapped.is_not(None))).scalars()
        destroyed = []
        for row in rows:
            row.wrapped = None
            row.destroyed_at = utcnow()
            destroyed.append(row.key_id)
            audit.record(session, actor=actor.username, action="key.destroyed",
                         object_type="project_key", object_id=row.key_id, project_id=project_id,
                         details={"version": row.version, "reason": reason})
        return destroyed

    # -- signing key -------------------------------------------------------------------------
    def ensure_signing_key(self) -> bool:
        """Create the Ed25519 signing key (wrapped by the master key) once; True if created."""
        path = self.settings.keys_dir / SIGNING_KEY_FILE
        if path.exists():
            return False
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(serialization.Encoding.Raw,
                                    serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        write_atomic(path, self._wrap(raw, b"enclave-signing-key/1"), mode=0o600)
        public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        write_atomic(self.settings.keys_dir / SIGNING_PUB_FILE, (public.hex() + "\n").encode(),
                     mode=0o644)
        return True

    def signer(self) -> Signer:
        """The enclave's signer for audit checkpoints and release packages."""
        path = self.settings.keys_dir / SIGNING_KEY_FILE
        if not path.exists():
            raise KeyStoreError(f"no signing key at {path}: run 'enclave init'")
        raw = self._unwrap(path.read_bytes(), b"enclave-signing-key/1", "the signing key")
        return Signer(Ed25519PrivateKey.from_private_bytes(raw))


class Signer:
    """Ed25519 signatures; the private half never leaves this object."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public: Ed25519PublicKey = private.public_key()

    def __repr__(self) -> str:
        return f"Signer(public={self.public_hex()[:16]}...)"

    def sign(self, payload: bytes) -> bytes:
        """Signature of ``payload``."""
        return self._private.sign(payload)

    def verify(self, signature: bytes, payload: bytes) -> bool:
        """True if ``signature`` is ours over ``payload``."""
        try:
            self.public.verify(signature, payload)
        except InvalidSignature:
            return False
        return True

    def public_hex(self) -> str:
        """The raw public key as hex, published beside checkpoints and releases."""
        return self.public.public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw).hex()
