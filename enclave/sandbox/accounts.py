"""Per-person Unix accounts and per-project Unix groups: the barrier behind the namespaces.

Each enclave user runs as their own unprivileged account (``enc-<username>``, uid and primary
gid from :data:`UID_RANGE`, no home, no login shell) and each project's extract belongs to the
group ``encp-<project>`` (gid from :data:`PROJECT_GID_RANGE`). Should a namespace ever leak, the
account still cannot read the raw zone, the keys, the database or another project's extract.

Group *membership* is not written to ``/etc/group``: the enclave database decides who belongs to
which project, and the sandbox receives the project's gid as a supplementary group at start
(:class:`enclave.sandbox.bwrap.SandboxSpec`), so a revoked member loses access at their next
start without any stale ``/etc/group`` line. Every function here is idempotent, refuses names it
cannot map safely, and needs root.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from enclave.sandbox.exceptions import AccountError, SandboxUnavailable

USER_PREFIX = "enc-"
#: System accounts (batch runs) use another prefix so that no enclave username maps onto them.
SYSTEM_PREFIX = "encs-"
GROUP_PREFIX = "encp-"
UID_RANGE = range(61000, 62000)
PROJECT_GID_RANGE = range(62000, 64000)
ACCOUNT_COMMENT = "enclave sandbox account for "
USERADD = "/usr/sbin/useradd"
USERDEL = "/usr/sbin/userdel"
GROUPADD = "/usr/sbin/groupadd"
GROUPDEL = "/usr/sbin/groupdel"
NOLOGIN = "/usr/sbin/nologin"
LOCK_FILE = "/run/lock/enclave-accounts.lock"
_TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

#: The enclave's own username rule (see enclave.core.people): a-z 0-9 . - _, starting alnum.
_ENCLAVE_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
#: Usernames kept as they are in the Unix name (4 + 28 = 32, the Unix maximum).
_PLAIN_USERNAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,27}")
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,26}")
_SYSTEM_PURPOSE = re.compile(r"[a-z][a-z0-9-]{0,26}")


@dataclass(frozen=True)
class Account:
    """An unprivileged sandbox account: its Unix name, uid and primary gid."""

    username: str
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class ProjectGroup:
    """The Unix group that may read a project's extract and write its outputs."""

    project_id: str
    name: str
    gid: int


def require_root(what: str) -> None:
    """Raise :class:`SandboxUnavailable` unless running as root with the account tools."""
    if os.geteuid() != 0:
        raise SandboxUnavailable(f"{what} needs root (the hub or the enclave service runs as "
                                 "root to create sandbox accounts and switch to them)")
    for tool in (USERADD, GROUPADD):
        if not os.access(tool, os.X_OK):
            raise SandboxUnavailable(f"{what} needs {tool} (Debian package 'passwd')")


def unix_name_for(username: str) -> str:
    """The Unix account name of an enclave user: ``enc-<username>``, or a hashed form.

    Names that are not plain lower-case words of at most 28 characters (dots, length) become
    ``enc-<stem>-<8 hex of SHA-256>``; the account's comment records the enclave username, and
    :func:`ensure_account` refuses an account whose comment names someone else.
    """
    if not isinstance(username, str) or not _ENCLAVE_USERNAME.fullmatch(username):
        raise AccountError(f"username {username!r} cannot have a sandbox account: it must be "
                           "1-100 characters among a-z 0-9 . - _ and start with a letter or digit")
    if _PLAIN_USERNAME.fullmatch(username):
        return USER_PREFIX + username
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9_-]", "_", username)[:19]
    return f"{USER_PREFIX}{stem}-{digest}"


def project_group_name(project_id: str) -> str:
    """``encp-<project>``; project ids outside ``[a-z0-9][a-z0-9_-]{0,26}`` are refused."""
    if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
        raise AccountError(f"project id {project_id!r} cannot name a Unix group: it must be "
                           "1-27 characters among a-z 0-9 - _ and start with a letter or digit")
    return GROUP_PREFIX + project_id


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise account creation between processes (useradd locks, but uid choice must too)."""
    os.makedirs(os.path.dirname(LOCK_FILE), mode=0o755, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tool(*argv: str) -> None:
    proc = subprocess.run(argv, env=_TOOL_ENV, capture_output=True, text=True,  # noqa: S603 - fixed absolute tool path, validated names
                          check=False, timeout=60)
    if proc.returncode != 0:
        raise AccountError(f"{' '.join(argv)} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()}")


def _free_id(id_range: range, *, uid_too: bool) -> int:
    used_gids = {g.gr_gid for g in grp.getgrall()}
    used_uids = {p.pw_uid for p in pwd.getpwall()} if uid_too else set()
    for candidate in id_range:
        if candidate not in used_gids and candidate not in used_uids:
            return candidate
    raise AccountError(f"no free id left in {id_range.start}-{id_range.stop - 1}; remove the "
                       "accounts or groups of closed projects")


def _existing_account(name: str, username: str) -> Account | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    if entry.pw_uid not in UID_RANGE or entry.pw_gecos != ACCOUNT_COMMENT + username:
        raise AccountError(f"the Unix account {name!r} exists but is not the sandbox account of "
                           f"{username!r} (uid {entry.pw_uid}, comment {entry.pw_gecos!r}); "
                           "refusing to run anyone's workspace under it")
    if entry.pw_shell != NOLOGIN:
        raise AccountError(f"the sandbox account {name!r} has the login shell "
                           f"{entry.pw_shell!r}; it must be {NOLOGIN}")
    return Account(username, name, entry.pw_uid, entry.pw_gid)


def _ensure(name: str, username: str) -> Account:
    require_root("creating a sandbox account")
    found = _existing_account(name, username)
    if found is not None:
        return found
    with _locked():
        found = _existing_account(name, username)
        if found is not None:
            return found
        try:
            grp.getgrnam(name)
        except KeyError:
            pass
        else:
            raise AccountError(f"a Unix group named {name!r} exists without its sandbox account; "
                               "remove it or choose another username")
        number = _free_id(UID_RANGE, uid_too=True)
        _tool(GROUPADD, "--system", "--gid", str(number), name)
        try:
            _tool(USERADD, "--system", "--no-create-home", "--shell", NOLOGIN,
                  "--home-dir", "/nonexistent", "--uid", str(number), "--gid", str(number),
                  "--comment", ACCOUNT_COMMENT + username, name)
        except AccountError:
            _tool(GROUPDEL, name)
            raise
    made = _existing_account(name, username)
    if made is None:  # pragma: no cover - useradd reported success
        raise AccountError(f"useradd reported success but {name!r} does not exist")
    return made


def ensure_account(username: str) -> Account:
    """The sandbox account of an enclave user, created on first use (idempotent)."""
    return _ensure(unix_name_for(username), username)


def ensure_system_account(purpose: str = "batch") -> Account:
    """A sandbox account for system runs (``encs-<purpose>``), never a person's account."""
    if not _SYSTEM_PURPOSE.fullmatch(purpose):
        raise AccountError(f"system account purpose {purpose!r} must match "
                           f"{_SYSTEM_PURPOSE.pattern}")
    return _ensure(SYSTEM_PREFIX + purpose, SYSTEM_PREFIX + purpose)


def _existing_group(name: str, project_id: str) -> ProjectGroup | None:
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return None
    if entry.gr_gid not in PROJECT_GID_RANGE:
        raise AccountError(f"the Unix group {name!r} exists with gid {entry.gr_gid}, outside "
                           f"the project range {PROJECT_GID_RANGE.start}-"
                           f"{PROJECT_GID_RANGE.stop - 1}; refusing to give it project data")
    return ProjectGroup(project_id, name, entry.gr_gid)


def ensure_project_group(project_id: str) -> ProjectGroup:
    """The project's Unix group, created on first use (idempotent)."""
    name = project_group_name(project_id)
    require_root("creating a project group")
    found = _existing_group(name, project_id)
    if found is not None:
        return found
    with _locked():
        found = _existing_group(name, project_id)
        if found is None:
            _tool(GROUPADD, "--system", "--gid",
                  str(_free_id(PROJECT_GID_RANGE, uid_too=False)), name)
            found = _existing_group(name, project_id)
    if found is None:  # pragma: no cover - groupadd reported success
        raise AccountError(f"groupadd reported success but {name!r} does not exist")
    return found


def remove_project_group(project_id: str) -> bool:
    """Delete the project's group when the project closes; False if there was none."""
    name = project_group_name(project_id)
    require_root("removing a project group")
    with _locked():
        if _existing_group(name, project_id) is None:
            return False
        _tool(GROUPDEL, name)
    return True


def remove_account(username: str) -> bool:
    """Delete a sandbox account (and its primary group); False if there was none."""
    name = unix_name_for(username)
    require_root("removing a sandbox account")
    with _locked():
        if _existing_account(name, username) is None:
            return False
        _tool(USERDEL, name)
        with contextlib.suppress(KeyError):
            if grp.getgrnam(name).gr_gid in UID_RANGE:
                _tool(GROUPDEL, name)
    return True


def _set(path: Path | str, uid: int, gid: int, mode: int, *, directory: bool,
         what: str) -> None:
    """chown and chmod through a descriptor opened without following symlinks (no TOCTOU)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    flags |= os.O_DIRECTORY if directory else 0
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise AccountError(f"{what} {path} does not exist") from None
    except OSError as exc:  # ELOOP (symlink) or ENOTDIR
        raise AccountError(f"{what} {path} is not a plain {'folder' if directory else 'file'} "
                           f"({exc.strerror}); refusing to change its ownership") from None
    try:
        kind = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(kind) if directory else stat.S_ISREG(kind)):
            raise AccountError(f"{what} {path} is not a plain "
                               f"{'folder' if directory else 'file'}; refusing to grant it")
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def grant_extract(group: ProjectGroup, extract_dir: Path) -> None:
    """Make an extract readable by its project group only: root:group, dirs 0750, files 0440."""
    require_root("granting an extract to its project")
    _set(extract_dir, 0, group.gid, 0o750, directory=True, what="extract folder")
    for root, dirs, files in os.walk(extract_dir, followlinks=False):
        for name in dirs:
            _set(os.path.join(root, name), 0, group.gid, 0o750, directory=True,
                 what="extract folder")
        for name in files:
            _set(os.path.join(root, name), 0, group.gid, 0o440, directory=False,
                 what="extract file")


def prepare_outputs(group: ProjectGroup, outputs_dir: Path) -> None:
    """The project's outputs folder: root:group, 2770 (members write, files keep the group)."""
    require_root("preparing a project's outputs folder")
    outputs_dir.mkdir(parents=True, exist_ok=True)
    _set(outputs_dir, 0, group.gid, 0o2770, directory=True, what="outputs folder")


def prepare_work_dir(account: Account, work_dir: Path) -> None:
    """A person's work folder for one project: owned by their account, mode 0700."""
    require_root("preparing a work folder")
    work_dir.mkdir(parents=True, exist_ok=True)
    _set(work_dir, account.uid, account.gid, 0o700, directory=True, what="work folder")
