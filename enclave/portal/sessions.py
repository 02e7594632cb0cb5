"""Sealed cookies, CSRF tokens and safe redirects of the portal.

A cookie payload is JSON sealed with AES-256-GCM (NIST SP 800-38D; 96-bit random nonce) under a
key derived from the portal secret with HKDF-SHA256 (RFC 5869); the cookie's purpose is the
associated data, so a state cookie can never be replayed as a session. The session holds the
hub's OAuth token (never readable by the browser or by scripts: HttpOnly) and a random session
id. The CSRF token is ``HMAC-SHA256(csrf_key, "csrf/1:" + session id)``: a double-submit token
bound to the session, sent both as a cookie and as a form field, and both must equal the value
recomputed from the session (OWASP "signed double-submit cookie").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave.core.exceptions import SettingsError
from enclave.core.files import write_atomic

SESSION_COOKIE = "enclave-portal-session"
STATE_COOKIE = "enclave-portal-oauth-state"
CSRF_COOKIE = "enclave-portal-csrf"
LANG_COOKIE = "enclave-portal-lang"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 8 * 3600  # a working day; the hub's own login outlives it
STATE_MAX_AGE = 600  # an OAuth round trip, as the hub's own state cookie
SECRET_BYTES = 32
_MAX_COOKIE = 4096


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"enclave-portal/" + purpose).derive(secret)


class CookieSealer:
    """Seals and opens the portal's cookies and computes session-bound CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise SettingsError(f"the portal secret needs at least {SECRET_BYTES} bytes")
        self._aead = AESGCM(_derive(secret, b"cookie/1"))
        self._csrf_key = _derive(secret, b"csrf/1")

    def seal(self, purpose: str, payload: dict[str, Any], max_age: int,
             now: float | None = None) -> str:
        """The encrypted, authenticated cookie value of ``payload``, valid ``max_age`` seconds."""
        expires = int((time.time() if now is None else now) + max_age)
        body = json.dumps({**payload, "exp": expires}, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        return _b64e(nonce + self._aead.encrypt(nonce, body, purpose.encode()))

    def open(self, purpose: str, value: str | None,
             now: float | None = None) -> dict[str, Any] | None:
        """The payload of a cookie sealed for ``purpose`` and not expired, else None."""
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            raw = _b64d(value)
            body = self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
            doc = json.loads(body)
        except (ValueError, InvalidTag, binascii.Error, UnicodeError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("exp"), int):
            return None
        if doc["exp"] < (time.time() if now is None else now):
            return None
        return doc

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of a session: the same for every form the session displays."""
        mac = hmac.new(self._csrf_key, b"csrf/1:" + session_id.encode(), hashlib.sha256)
        return _b64e(mac.digest())

    def csrf_ok(self, session_id: str, submitted: object, cookie: object) -> bool:
        """True only if the form field and the cookie both carry this session's token."""
        if not isinstance(submitted, str) or not isinstance(cookie, str):
            return False
        expected = self.csrf_token(session_id).encode()
        return (hmac.compare_digest(submitted.encode("utf-8", "replace"), expected)
                and hmac.compare_digest(cookie.encode("utf-8", "replace"), expected))


def new_session_id() -> str:
    """A random session id (144 bits)."""
    return secrets.token_urlsafe(18)


def load_or_create_secret(path: Path) -> bytes:
    """The portal's cookie secret from ``path`` (hex, mode 0600), created on first use."""
    if not path.exists():
        write_atomic(path, secrets.token_hex(SECRET_BYTES).encode() + b"\n", mode=0o600)
    if path.stat().st_mode & 0o077:
        raise SettingsError(f"the portal secret {path} must be readable by its owner only "
                            "(chmod 600)")
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeError):
        raise SettingsError(f"the portal secret {path} is not hexadecimal") from None
    if len(secret) < SECRET_BYTES:
        raise SettingsError(f"the portal secret {path} is shorter than {SECRET_BYTES} bytes")
    return secret


def local_path(candidate: str | None, prefix: str) -> str:
    """``candidate`` if it is a plain path under the portal's prefix, else the prefix itself.

    Refuses schemes, hosts, protocol-relative ``//``, backslashes, control characters and dot
    segments, so that a redirect after login can never leave the portal (open redirect).
    """
    if not candidate or len(candidate) > 2000 or not candidate.startswith(prefix):
        return prefix
    if "\\" in candidate or any(ord(ch) < 32 or ord(ch) == 127 for ch in candidate):
        return prefix
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or candidate.startswith("//"):
        return prefix
    segments = parts.path.split("/")
    if any(seg in (".", "..") or seg.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.")
           for seg in segments):
        return prefix
    return candidate
