"""People: accounts, roles granted from identity-provider groups, and accreditation (safe people).

Demo accounts carry a password hash (scrypt, RFC 7914; n=2**14, r=8, p=1, 16-byte salt); in
production people log in through OpenID Connect and no password is stored here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from enclave.core import audit, policy
from enclave.core.db import Base, UTCDateTime, utcnow
from enclave.core.exceptions import NotFound, ValidationError
from enclave.core.policy import Actor, Role

ACCREDITATION_VALIDITY = timedelta(days=4 * 365 + 1)  # four years, as the access rules require
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")


class User(Base):
    """A person known to the enclave."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    institution: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoleGrant(Base):
    """A role held by a user, synchronised from the identity provider's groups."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("user_id", "role"),)


class Accreditation(Base):
    """A recorded training (safe people); valid four years from the training date."""

    __tablename__ = "accreditations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    trained_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- passwords (demo accounts only) ---------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """scrypt hash in the form ``scrypt$n$r$p$salt_hex$hash_hex``."""
    if len(password) < 8:
        raise ValidationError("a password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(stored: str | None, password: str) -> bool:
    """Constant-time comparison of ``password`` with a stored scrypt hash."""
    if not stored:
        return False
    try:
        _, n, r, p, salt, digest = stored.split("$")
        if not (2 <= int(n) <= 2**20 and 1 <= int(r) <= 32 and 1 <= int(p) <= 16):
            return False  # a corrupt or hostile hash must not exhaust memory or crash login
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n),
                                   r=int(r), p=int(p), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError, OverflowError, MemoryError):
        return False
    return hmac.compare_digest(candidate.hex(), digest)


# -- operations ---------------------------------------------------------------------------------

def _valid_username(username: str) -> str:
    if (not username or len(username) > 100 or not set(username) <= USERNAME_CHARS
            or not username[0].isalnum()):  # '.' and '..' would be path tricks in work folders
        raise ValidationError(f"username {username!r} must be 1-100 characters among a-z 0-9 . - _"
                              ", starting with a letter or digit")
    return username


def get_user(session: Session, username: str) -> User:
    """The user with this username, or NotFound."""
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def create_user(session: Session, actor: Actor, username: str, display_name: str, *,
                email: str = "", institution: str = "", roles: Iterable[Role] = (),
                password: str | None = None) -> User:
    """Create an account with its roles, audited in the caller's transaction."""
    policy.check_manage_people(actor)
    _valid_username(username)
    if session.execute(select(User.id).where(User.username == username)).first():
        raise ValidationError(f"a user named {username!r} already exists")
    user = User(username=username, display_name=display_name[:200], email=email[:254],
                institution=institution[:200], active=True, created_at=utcnow(),
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    role_list = sorted({Role(r) for r in roles} - {Role.SYSTEM})
    for role in role_list:
        session.add(RoleGrant(user_id=user.id, role=role.value))
    audit.record(session, actor=actor.username, action="user.created", object_type="user",
                 object_id=username, details={"roles": [r.value for r in role_list],
                                              "institution": institution[:200]})
    return user


def sync_roles_from_groups(session: Session, actor: Actor, username: str,
                           groups: Iterable[str]) -> set[Role]:
    """Replace a user's roles by those its identity-provider groups grant; audit any change."""
    policy.check_manage_people(actor)
    user = get_user(session, username)
    wanted = {policy.GROUP_ROLES[g.lstrip("/")] for g in groups if g.lstrip("/") in
              policy.GROUP_ROLES}
    current = roles_of(session, user.id)
    if wanted != current:
        session.execute(delete(RoleGrant).where(RoleGrant.user_id == user.id))
        for role in sorted(wanted):
            session.add(RoleGrant(user_id=user.id, role=role.value))
        audit.record(session, actor=actor.username, action="user.roles_synced",
                     object_type="user", object_id=username,
                     details={"before": sorted(r.value for r in current),
                              "after": sorted(r.value for r in wanted)})
    return wanted


def roles_of(session: Session, user_id: int) -> set[Role]:
    """The roles a user holds."""
    rows = session.execute(select(RoleGrant.role).where(RoleGrant.user_id == user_id)).scalars()
    return {Role(r) for r in rows}


def record_accreditation(session: Session, actor: Actor, username: str, trained_on: date,
                         reference: str = "") -> Accreditation:
    """Record a training; the accreditation then runs four years from ``trained_on``."""
    policy.check_record_accreditation(actor)
    if trained_on > date.today():
        raise ValidationError("a training date cannot be in the future")
    user = get_user(session, username)
    acc = Accreditation(user_id=user.id, trained_on=trained_on,
                        expires_on=trained_on + ACCREDITATION_VALIDITY,
                        reference=reference[:200], recorded_by=actor.username,
                        recorded_at=utcnow())
    session.add(acc)
    audit.record(session, actor=actor.username, action="accreditation.recorded",
                 object_type="user", object_id=username,
                 details={"trained_on": trained_on.isoformat(),
                          "expires_on": acc.expires_on.isoformat(), "reference": reference[:200]})
    return acc


def actor_for(session: Session, username: str, today: date | None = None) -> Actor:
    """The policy's view of a person now: roles, activity, accreditation end."""
    user = get_user(session, username)
    until = session.execute(select(Accreditation.expires_on)
                            .where(Accreditation.user_id == user.id)
                            .order_by(Accreditation.expires_on.desc()).limit(1)).scalar()
    return Actor(user.username, frozenset(roles_of(session, user.id)), user.active, until,
                 today or date.today())


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active demo account matching the password, or None (same cost either way)."""
    user = session.execute(select(User).where(User.username == username)).scalar()
    if user is None or not user.active or not user.password_hash:
        password_matches(_DUMMY_HASH, password)  # same cost whatever the reason for refusal
        return None
    return user if password_matches(user.password_hash, password) else None


_DUMMY_HASH = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 64
