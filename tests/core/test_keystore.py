"""The key store: master key sources, project keys bound to their row, shredding, signing."""

from __future__ import annotations

import base64
import secrets
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import MetaData, select, text

from enclave.core import audit
from enclave.core.context import Enclave
from enclave.core.exceptions import KeyStoreError, PermissionDenied
from enclave.core.keystore import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE,
    SIGNING_KEY_FILE,
    SIGNING_PUB_FILE,
    DataKey,
    KeyStore,
    ProjectKey,
)
from enclave.core.policy import Actor, Role
from enclave.core.settings import Settings, load_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    """Demo settings with a private, not yet initialised home (no database needed)."""
    return load_settings(env={}, home=tmp_path / "var")


@pytest.fixture
def keystore(home_settings: Settings) -> KeyStore:
    """A demo key store with its master key file and signing key created."""
    keys = KeyStore(home_settings, env={})
    keys.ensure_demo_master_key()
    keys.ensure_signing_key()
    return keys


def _events(enclave: Enclave, action: str) -> list[audit.AuditEvent]:
    with enclave.db.sessions() as session:
        return list(session.execute(select(audit.AuditEvent).where(
            audit.AuditEvent.action == action).order_by(audit.AuditEvent.seq)).scalars())


def _create_keys(enclave: Enclave, project_id: str, n: int) -> list[DataKey]:
    with enclave.db.transaction() as session:
        return [enclave.keys.create_project_key(session, project_id, "dora") for _ in range(n)]


def _sql(enclave: Enclave, statement: str, **params: object) -> None:
    with enclave.db.engine.begin() as conn:
        conn.execute(text(statement), params)


# -- the master key ------------------------------------------------------------------------------

def test_demo_master_key_file_is_created_once_0600_inside_a_0700_folder(
        home_settings: Settings) -> None:
    home_settings.keys_dir.mkdir(parents=True, mode=0o755)
    home_settings.keys_dir.chmod(0o755)
    keys = KeyStore(home_settings, env={})
    assert keys.ensure_demo_master_key() is True
    path = home_settings.keys_dir / MASTER_KEY_FILE
    assert _mode(path) == 0o600
    assert _mode(home_settings.keys_dir) == 0o700
    first = path.read_bytes()
    assert len(bytes.fromhex(first.decode().strip())) == 32
    assert KeyStore(home_settings, env={}).ensure_demo_master_key() is False
    assert path.read_bytes() == first


def test_no_demo_master_key_file_is_written_when_the_environment_has_one(
        home_settings: Settings) -> None:
    keys = KeyStore(home_settings, env={MASTER_KEY_ENV: secrets.token_hex(32)})
    assert keys.ensure_demo_master_key() is False
    assert not (home_settings.keys_dir / MASTER_KEY_FILE).exists()


def test_missing_master_key_says_to_run_init(home_settings: Settings) -> None:
    with pytest.raises(KeyStoreError, match="enclave init"):
        KeyStore(home_settings, env={}).ensure_signing_key()


def test_master_key_from_the_environment_is_used_instead_of_the_file(enclave: Enclave) -> None:
    master = secrets.token_bytes(32)
    as_hex = KeyStore(enclave.settings, env={MASTER_KEY_ENV: master.hex()})
    as_b64 = KeyStore(enclave.settings, env={
        MASTER_KEY_ENV: base64.urlsafe_b64encode(master).decode().rstrip("=")})
    as_b64_padded = KeyStore(enclave.settings, env={
        MASTER_KEY_ENV: base64.urlsafe_b64encode(master).decode()})
    with enclave.db.transaction() as session:
        created = as_hex.create_project_key(session, "prj-env", "dora")
    with enclave.db.sessions() as session:
        assert as_b64.project_key(session, "prj-env").material == created.material
        assert as_b64_padded.project_key(session, "prj-env").material == created.material
        with pytest.raises(KeyStoreError, match="cannot be unwrapped"):
            enclave.keys.project_key(session, "prj-env")  # the demo file's key


@pytest.mark.parametrize("raw", [
    "zz" * 32,                                                     # 64 characters, not hex
    secrets.token_hex(31),                                         # 31 bytes as hex
    secrets.token_hex(33),                                         # 33 bytes as hex
    base64.urlsafe_b64encode(secrets.token_bytes(16)).decode(),    # 16 bytes
    base64.urlsafe_b64encode(secrets.token_bytes(48)).decode(),    # 48 bytes
    "A" * 45,                                                      # impossible base64 length
    "not a key",
], ids=["not-hex", "hex-31", "hex-33", "b64-16", "b64-48", "b64-bad-length", "words"])
def test_malformed_or_wrong_length_environment_key_is_refused(home_settings: Settings,
                                                              raw: str) -> None:
    keys = KeyStore(home_settings, env={MASTER_KEY_ENV: raw})
    with pytest.raises(KeyStoreError, match=MASTER_KEY_ENV):
        keys.ensure_signing_key()
    assert not (home_settings.keys_dir / SIGNING_KEY_FILE).exists()


def test_production_without_environment_key_is_refused_with_instructions(
        home_settings: Settings) -> None:
    KeyStore(home_settings, env={}).ensure_demo_master_key()  # a demo file must not be used
    production = load_settings(env={}, home=home_settings.home, mode="production",
                               database_url="postgresql+psycopg://enclave@db/enclave")
    keys = KeyStore(production, env={})
    with pytest.raises(KeyStoreError) as info:
        keys.ensure_demo_master_key()
    message = str(info.value)
    assert MASTER_KEY_ENV in message
    assert "enclave keys new-master" in message
    with pytest.raises(KeyStoreError, match=MASTER_KEY_ENV):
        keys.ensure_signing_key()


def test_production_with_environment_key_works(home_settings: Settings) -> None:
    production = load_settings(env={}, home=home_settings.home, mode="production",
                               database_url="postgresql+psycopg://enclave@db/enclave")
    keys = KeyStore(production, env={MASTER_KEY_ENV: secrets.token_hex(32)})
    assert keys.ensure_demo_master_key() is False
    assert keys.ensure_signing_key() is True
    assert not (production.keys_dir / MASTER_KEY_FILE).exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644], ids=oct)
def test_master_key_file_readable_by_others_is_refused(keystore: KeyStore, mode: int) -> None:
    (keystore.settings.keys_dir / MASTER_KEY_FILE).chmod(mode)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        KeyStore(keystore.settings, env={}).signer()


# -- project data keys ---------------------------------------------------------------------------

def test_project_keys_are_versioned_1_then_2_and_audited(enclave: Enclave) -> None:
    first, second = _create_keys(enclave, "prj-a", 2)
    assert (first.version, second.version) == (1, 2)
    assert first.key_id != second.key_id
    assert first.material != second.material
    assert len(first.material) == 32
    events = _events(enclave, "key.created")
    assert [(e.object_id, e.project_id) for e in events] == [
        (first.key_id, "prj-a"), (second.key_id, "prj-a")]
    assert _create_keys(enclave, "prj-b", 1)[0].version == 1


def test_project_key_unwraps_to_the_created_key_in_a_new_key_store(enclave: Enclave) -> None:
    first, second = _create_keys(enclave, "prj-a", 2)
    fresh = KeyStore(enclave.settings, env={})
    with enclave.db.sessions() as session:
        assert fresh.project_key(session, "prj-a") == second
        assert fresh.project_key(session, "prj-a", version=1) == first


def test_missing_project_key_is_an_error(enclave: Enclave) -> None:
    _create_keys(enclave, "prj-a", 1)
    with enclave.db.sessions() as session:
        with pytest.raises(KeyStoreError, match="prj-z has no data key"):
            enclave.keys.project_key(session, "prj-z")
        with pytest.raises(KeyStoreError, match="version 7"):
            enclave.keys.project_key(session, "prj-a", version=7)


def test_raw_key_bytes_never_reach_the_database(enclave: Enclave) -> None:
    keys = _create_keys(enclave, "prj-a", 3)
    secrets_seen = [k.material for k in keys] + [k.material.hex().encode() for k in keys]
    with enclave.db.sessions() as session:
        wrapped = list(session.execute(select(ProjectKey.wrapped)).scalars())
        assert len(wrapped) == 3
        for blob in wrapped:
            assert blob is not None and len(blob) == 12 + 32 + 16
            assert all(s not in blob for s in secrets_seen)
        every_table = MetaData()
        every_table.reflect(bind=session.connection())
        assert "project_keys" in every_table.tables
        for table in every_table.sorted_tables:
            for row in session.execute(table.select()).all():
                for value in row:
                    data = value if isinstance(value, bytes) else str(value).encode()
                    assert all(s not in data for s in secrets_seen), table.name
    if enclave.db.dialect == "sqlite":
        enclave.db.dispose()
        db_file = Path(enclave.db.url.removeprefix("sqlite:///"))
        files = [p for p in db_file.parent.iterdir() if p.name.startswith(db_file.name)]
        assert db_file in files
        for path in files:
            content = path.read_bytes()
            assert all(s not in content for s in secrets_seen), path.name


@pytest.mark.parametrize("tamper", ["project_id", "key_id", "version", "wrapped"])
def test_wrapped_key_moved_to_another_row_does_not_unwrap(enclave: Enclave, tamper: str) -> None:
    first, second = _create_keys(enclave, "prj-a", 2)
    project, version = "prj-a", 2
    if tamper == "project_id":
        _sql(enclave, "UPDATE project_keys SET project_id = 'prj-b' WHERE key_id = :k",
             k=second.key_id)
        project = "prj-b"
    elif tamper == "key_id":
        _sql(enclave, "UPDATE project_keys SET key_id = :new WHERE key_id = :k",
             new=str(uuid.uuid4()), k=second.key_id)
    elif tamper == "version":
        _sql(enclave, "UPDATE project_keys SET version = 3 WHERE key_id = :k", k=second.key_id)
        version = 3
    else:
        with enclave.db.sessions() as session:
            blob = session.get(ProjectKey, first.key_id).wrapped  # type: ignore[union-attr]
        _sql(enclave, "UPDATE project_keys SET wrapped = :w WHERE key_id = :k", w=blob,
             k=second.key_id)
    with enclave.db.sessions() as session:
        with pytest.raises(KeyStoreError, match=r"cannot be unwrapped.*altered or moved"):
            enclave.keys.project_key(session, project, version=version)
        assert enclave.keys.project_key(session, "prj-a", version=1) == first


def test_different_master_key_fails_with_a_clear_error(enclave: Enclave) -> None:
    _create_keys(enclave, "prj-a", 1)
    other = KeyStore(enclave.settings, env={MASTER_KEY_ENV: secrets.token_hex(32)})
    with enclave.db.sessions() as session, \
            pytest.raises(KeyStoreError, match="wrong master key"):
        other.project_key(session, "prj-a")


DORA = Actor("dora", frozenset({Role.DEPP_STAFF}))


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.OUTPUT_CHECKER, Role.ETHICS_COMMITTEE,
                                  Role.PLATFORM_ADMIN])
def test_only_depp_staff_or_the_system_destroy_project_keys(enclave: Enclave,
                                                            role: Role) -> None:
    (key,) = _create_keys(enclave, "prj-a", 1)
    with pytest.raises(PermissionDenied), enclave.db.transaction() as session:
        enclave.keys.destroy_project_keys(session, "prj-a", Actor("x", frozenset({role})), "no")
    with enclave.db.sessions() as session:
        assert enclave.keys.project_key(session, "prj-a") == key
    assert _events(enclave, "key.destroyed") == []


def test_destroying_project_keys_shreds_them_and_audits_each(enclave: Enclave) -> None:
    first, second = _create_keys(enclave, "prj-a", 2)
    (kept,) = _create_keys(enclave, "prj-b", 1)
    with enclave.db.transaction() as session:
        destroyed = enclave.keys.destroy_project_keys(session, "prj-a", DORA, "project closed")
    assert sorted(destroyed) == sorted([first.key_id, second.key_id])
    with enclave.db.sessions() as session:
        rows = {r.key_id: r for r in session.execute(select(ProjectKey)).scalars()}
        for key in (first, second):
            assert rows[key.key_id].wrapped is None
            destroyed_at = rows[key.key_id].destroyed_at
            assert destroyed_at is not None and destroyed_at.utcoffset() is not None
        assert rows[kept.key_id].wrapped is not None
        assert rows[kept.key_id].destroyed_at is None
        for version in (None, 1, 2):
            with pytest.raises(KeyStoreError, match="destroyed"):
                enclave.keys.project_key(session, "prj-a", version=version)
        assert enclave.keys.project_key(session, "prj-b") == kept
    events = _events(enclave, "key.destroyed")
    assert sorted(e.object_id for e in events) == sorted(destroyed)
    for event in events:
        assert event.actor == "dora"
        assert event.project_id == "prj-a"
        assert '"reason":"project closed"' in event.details
    with enclave.db.transaction() as session:
        assert enclave.keys.destroy_project_keys(session, "prj-a", DORA, "again") == []
    assert len(_events(enclave, "key.destroyed")) == 2


def test_data_key_repr_and_str_never_show_the_key(enclave: Enclave) -> None:
    (key,) = _create_keys(enclave, "prj-a", 1)
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert key.material.hex() not in shown
        assert key.material.hex().upper() not in shown
        assert repr(key.material) not in shown
        assert base64.b64encode(key.material).decode() not in shown
        assert key.key_id in shown


# -- the signing key -----------------------------------------------------------------------------

def test_signing_key_is_created_once_and_stored_wrapped(keystore: KeyStore) -> None:
    keys_dir = keystore.settings.keys_dir
    wrapped = (keys_dir / SIGNING_KEY_FILE).read_bytes()
    assert keystore.ensure_signing_key() is False
    assert (keys_dir / SIGNING_KEY_FILE).read_bytes() == wrapped
    assert _mode(keys_dir / SIGNING_KEY_FILE) == 0o600
    signer = keystore.signer()
    assert (keys_dir / SIGNING_PUB_FILE).read_text().strip() == signer.public_hex()
    assert KeyStore(keystore.settings, env={}).signer().public_hex() == signer.public_hex()
    private = signer._private.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())
    assert private not in wrapped
    assert private.hex().encode() not in wrapped


def test_signature_round_trip_and_tampering(keystore: KeyStore) -> None:
    signer = keystore.signer()
    payload = b'{"seq":12,"head_hash":"ab"}'
    signature = signer.sign(payload)
    assert signer.verify(signature, payload) is True
    assert KeyStore(keystore.settings, env={}).signer().verify(signature, payload) is True
    assert signer.verify(signature, payload.replace(b"12", b"13")) is False
    assert signer.verify(signature, payload + b" ") is False
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    assert signer.verify(forged, payload) is False


def test_signing_key_under_another_master_key_does_not_unwrap(keystore: KeyStore) -> None:
    other = KeyStore(keystore.settings, env={MASTER_KEY_ENV: secrets.token_hex(32)})
    with pytest.raises(KeyStoreError, match="signing key cannot be unwrapped"):
        other.signer()


def test_missing_signing_key_says_to_run_init(home_settings: Settings) -> None:
    keys = KeyStore(home_settings, env={})
    keys.ensure_demo_master_key()
    with pytest.raises(KeyStoreError, match="enclave init"):
        keys.signer()


def test_signer_repr_and_str_never_show_the_private_key(keystore: KeyStore) -> None:
    signer = keystore.signer()
    private = signer._private.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())
    for shown in (repr(signer), str(signer), f"{signer}"):
        assert private.hex() not in shown
        assert repr(private) not in shown
        assert base64.b64encode(private).decode() not in shown
        assert shown.startswith("Signer(public=")
