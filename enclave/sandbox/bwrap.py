"""Every bubblewrap option of the enclave, in one place: the workspace sandbox and the kernel's.

:func:`sandbox_argv` builds the whole command that starts a sandboxed process from root:

1. ``unshare --mount --propagation private`` + a fixed shell script (:data:`STAGE_SCRIPT`), as
   root, in a mount namespace nobody else sees: join the sandbox's cgroups, mount a small tmpfs
   on :data:`STAGE_DIR` and bind there the folders the sandbox will see (extract, work folder,
   outputs, virtual environment, code) plus synthetic ``/etc`` files. The unprivileged account
   then needs no search right on the folders' ancestors (``/srv/enclave`` may stay 0700).
2. ``prlimit``: process count, CPU seconds, no core dumps (see :mod:`enclave.sandbox.limits`).
3. ``setpriv --reuid --regid --groups``: switch to the person's account and the project's group
   *before* bubblewrap, clear every capability set and set no-new-privileges. (bubblewrap
   started as root would keep its capabilities, and ``--unshare-user --uid N`` as root maps to
   host root.) ``setpriv`` is chosen over ``runuser`` (PAM, login session) and over a Python
   ``preexec_fn`` (unsafe in a threaded hub).
4. ``bwrap`` as that account: every namespace unshared (network: loopback only), no
   capabilities, a new session (no TIOCSTI into the hub's terminal), a read-only root with only
   ``/usr``, a synthetic ``/etc``, the virtual environment and the code read-only; ``/data``
   read-only; ``/work`` and ``/outputs`` read-write; ``/tmp``, HOME and ``/run`` private
   tmpfs; ``/proc`` of its own PID namespace; a minimal ``/dev``; an explicit environment.

:func:`kernel_argv` builds the nested sandbox a kernel runs in, *inside* the workspace sandbox:
no network, no user namespaces, no hub token, only ``/data``, ``/work``, ``/outputs`` and the
kernel's connection folder.

This module uses only the standard library: :mod:`enclave.sandbox.kernel` imports it inside the
sandbox. It never runs anything.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
PRLIMIT = "/usr/bin/prlimit"
UNSHARE = "/usr/bin/unshare"
SHELL = "/bin/sh"
#: Where the root stage mounts its tmpfs, in its private mount namespace (must exist on the host).
STAGE_DIR = "/run/enclave-sandbox"
#: The environment of the root stage and of bubblewrap itself (the sandbox gets --clearenv).
STAGE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

DATA = "/data"
#: The sandbox's private tmpfs (inside the sandbox; never the host's /tmp).
TMP = "/tmp"  # noqa: S108 - a path inside the sandbox, mounted as a fresh tmpfs
WORK = "/work"
OUTPUTS = "/outputs"
RUNTIME = "/run/jupyter"
#: Files holding secrets a workspace server needs (never the kernels): see ``secret_fds``.
SECRETS = "/run/secrets"
#: Host folders a workspace server needs (its socket, the hub's socket, its event log) are
#: bound under this folder; the nested kernel sandbox does not see it.
RUN_BINDS = "/run/enclave"
OPT = "/opt/enclave"
VENV = f"{OPT}/venv"
PYTHON = f"{VENV}/bin/python"
LIB = f"{OPT}/lib"
INPUT = f"{OPT}/input"
JUPYTER_PATH = f"{OPT}/share/jupyter"
KERNEL_NAME = "enclave-python"
HOSTNAME = "enclave"

#: Host files bound into the synthetic /etc when they exist (no account, network or secret).
HOST_ETC = ("ld.so.cache", "localtime", "mime.types", "fonts")
#: Top-level folders of the host bound read-only, or recreated as the same symlinks.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Programs masked (by an empty, non-executable file) inside every sandbox. Nothing there needs
#: Node.js, and JupyterLab runs ``node yarn config`` at import when it finds one (0.3 s or more
#: of CPU per workspace start, and one JavaScript runtime less to attack with).
HIDDEN_PROGRAMS = ("node", "nodejs")
PROGRAM_DIRS = ("/usr/local/bin", "/usr/bin")
#: Packages importable inside the sandbox besides the virtual environment's own.
SANDBOX_PACKAGES = ("output_control", "anonymization", "enclave.sandbox")

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|COOKIE|PRIVATE|(^|_)KEY($|_)", re.I)
_FORBIDDEN_PREFIXES = ("ENCLAVE_", "JUPYTERHUB_", "JPY_API_TOKEN", "LD_", "PYTHONSTARTUP",
                       "PYTHONHOME", "PYTHONINSPECT", "BASH_ENV")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The stage script. Arguments: the stage folder, then operations, then ``--`` and the command:
#: ``cg FILE`` (join a cgroup), ``bind SRC NAME`` (bind SRC at STAGE/NAME), ``file NAME TEXT``.
#: It is a constant: paths and contents arrive as positional arguments, never as shell code.
STAGE_SCRIPT = r"""set -eu
stage=$1; shift
mkdir -p -- "$stage"
mount -t tmpfs -o mode=0755,size=4m,nosuid,nodev,noexec enclave-stage "$stage"
while [ "$#" -gt 0 ]; do
  case "$1" in
    cg) printf '%s\n' "$$" > "$2"; shift 2 ;;
    bind)
      if [ -d "$2" ]; then mkdir -p -- "$stage/$3"
      else mkdir -p -- "$(dirname -- "$stage/$3")"; : > "$stage/$3"; fi
      mount --bind -- "$2" "$stage/$3"; shift 3 ;;
    file) mkdir -p -- "$(dirname -- "$stage/$2")"; printf '%s' "$3" > "$stage/$2"; shift 3 ;;
    --) shift; exec "$@" ;;
    *) echo "enclave sandbox stage: unknown operation $1" >&2; exit 125 ;;
  esac
done
exit 125
"""

GiB = 1024 ** 3
MiB = 1024 ** 2


@dataclass(frozen=True)
class SandboxSpec:
    """Who runs in the sandbox, what it sees, and its limits.

    ``project_groups`` are ``(name, gid)`` pairs given as supplementary groups (the enclave
    database, not ``/etc/group``, decides membership). ``extract_dir`` and ``outputs_dir`` may
    be None (no ``/data`` or ``/outputs``). ``allow_nested_userns`` lets the sandbox create user
    namespaces, which the nested kernel sandbox needs; without it ``--disable-userns`` applies.
    ``die_with_parent`` kills the sandbox when its starter dies: right for batch runs; for
    workspaces it means a hub restart kills every server (bubblewrap does not forward SIGTERM;
    signal the process group instead).
    """

    user: str
    uid: int
    gid: int
    project_groups: tuple[tuple[str, int], ...]
    extract_dir: Path | None
    work_dir: Path
    outputs_dir: Path | None
    memory_bytes: int = 2 * GiB
    nproc: int = 256
    cpu_seconds: int | None = None
    allow_nested_userns: bool = True
    die_with_parent: bool = True
    cpu_cores: float | None = None
    tmp_bytes: int = 512 * MiB
    venv: Path = field(default_factory=lambda: Path(sys.prefix))

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", self.user):
            raise ValueError(f"sandbox user {self.user!r} is not a safe Unix account name")
        if self.uid < 1000 or self.gid < 1000:
            raise ValueError(f"sandbox uid/gid {self.uid}/{self.gid} are system ids; a sandbox "
                             "never runs as root or as a system account")
        for name, gid in self.project_groups:
            if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name) or gid < 1000:
                raise ValueError(f"project group {name!r} ({gid}) is not a safe group")
        if self.memory_bytes < 64 * MiB or self.nproc < 8 or self.tmp_bytes < MiB:
            raise ValueError("sandbox limits too small: memory >= 64 MiB, nproc >= 8")
        if self.cpu_seconds is not None and self.cpu_seconds < 1:
            raise ValueError("cpu_seconds must be at least 1")

    @property
    def home(self) -> str:
        """HOME inside the sandbox: a private tmpfs, never the work folder."""
        return f"/home/{self.user}"


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """Refuse secrets and loader hooks in a sandbox environment; return it as a dict."""
    out = {}
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or "\0" in value:
            raise ValueError(f"invalid environment variable {name!r}")
        if name.startswith(_FORBIDDEN_PREFIXES) or _SECRET_NAME.search(name):
            raise ValueError(f"environment variable {name} may not enter a sandbox (no "
                             "ENCLAVE_* setting, hub token, secret or loader hook)")
        out[name] = value
    return out


def sandbox_env(spec: SandboxSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed process; nothing is inherited from the host."""
    home = spec.home
    env = {
        "PATH": f"{VENV}/bin:/usr/bin:/bin",
        "HOME": home, "USER": spec.user, "LOGNAME": spec.user, "SHELL": "/bin/sh",
        "LANG": "C.UTF-8", "TMPDIR": TMP,
        "PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": LIB,
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": RUNTIME, "JUPYTER_PATH": JUPYTER_PATH,
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "XDG_CACHE_HOME": f"{home}/.cache", "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_DATA_HOME": f"{home}/.local/share",
    }
    env.update(check_env(extra or {}))
    return env


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise ValueError(f"{venv} is not a virtual environment (no lib/python3*/site-packages)")
    return found[0]


def _package_dir(dotted: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(dotted)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def code_binds(venv: Path) -> list[tuple[Path, str]]:
    """``(host folder, path under LIB)`` for :data:`SANDBOX_PACKAGES` living outside the venv.

    An editable install keeps the enclave's packages in the source tree, which also holds
    ``var/`` (raw zone, keys, database): only the named package folders are bound, never the tree.
    """
    venv = venv.resolve()
    binds = []
    for dotted in SANDBOX_PACKAGES:
        folder = _package_dir(dotted)
        if folder is None or folder.is_relative_to(venv):
            continue
        binds.append((folder, dotted.replace(".", "/")))
    return binds


def editable_hooks(venv: Path) -> list[str]:
    """The venv's ``__editable__*.pth`` start-up hooks, masked inside the sandbox.

    They point imports at the source tree's paths, which inside the sandbox could resolve into
    the writable ``/work``; the bound :data:`LIB` folder replaces them.
    """
    site = _site_packages(venv)
    return [str(Path(VENV) / site.relative_to(venv) / p.name)
            for p in sorted(site.glob("__editable__*.pth"))]


def kernelspec(python: str = PYTHON) -> dict[str, object]:
    """The read-only kernelspec whose launcher runs each kernel in the nested sandbox."""
    return {
        "argv": [python, "-m", "enclave.sandbox.kernel", "-f", "{connection_file}"],
        "display_name": "Python 3 (enclave)",
        "language": "python",
        "interrupt_mode": "message",  # signals cannot cross the nested sandbox's PID namespace
        "metadata": {"debugger": False},
    }


def _passwd(spec: SandboxSpec) -> tuple[str, str]:
    passwd = (f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
              f"{spec.user}:x:{spec.uid}:{spec.gid}:{spec.user}:{spec.home}:/bin/sh\n"
              f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    groups = ["root:x:0:", f"{spec.user}:x:{spec.gid}:"]
    groups += [f"{name}:x:{gid}:{spec.user}" for name, gid in spec.project_groups]
    groups.append("nogroup:x:65534:")
    return passwd, "\n".join(groups) + "\n"


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def hidden_programs() -> list[str]:
    """Real paths (under ``/usr``) of the :data:`HIDDEN_PROGRAMS` installed on this host."""
    found: dict[str, None] = {}
    for folder in PROGRAM_DIRS:
        for name in HIDDEN_PROGRAMS:
            real = os.path.realpath(os.path.join(folder, name))
            if real.startswith("/usr/") and os.path.isfile(real):
                found[real] = None
    return list(found)


def _hardening(*, nested_userns: bool, die_with_parent: bool, uid: int, gid: int,
               hostname: str) -> list[str]:
    """Options shared by the workspace sandbox and the kernel sandbox."""
    args = ["--unshare-all", "--unshare-user", "--unshare-net", "--hostname", hostname,
            "--new-session", "--cap-drop", "ALL", "--uid", str(uid), "--gid", str(gid)]
    if not nested_userns:
        args.append("--disable-userns")
    if die_with_parent:
        args.append("--die-with-parent")
    return args


def _setenv(env: Mapping[str, str]) -> list[str]:
    args = ["--clearenv"]
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    return args


def sandbox_argv(spec: SandboxSpec, command: Sequence[str], *,
                 env: Mapping[str, str] | None = None,
                 cgroup_procs: Sequence[str] = (), memory_in_cgroup: bool = False,
                 extra_ro: Mapping[str, Path] | None = None,
                 secret_fds: Mapping[str, int] | None = None,
                 run_binds: Sequence[tuple[Path, str, bool]] = (),
                 chdir: str = WORK) -> list[str]:
    """The full argv (root stage, limits, uid switch, bubblewrap) that runs ``command``.

    Run it as root with ``env=STAGE_ENV``, stdin closed, and no other file descriptor.
    ``env`` is added to :func:`sandbox_env` (checked by :func:`check_env`); ``cgroup_procs``
    are the ``cgroup.procs`` files to join; ``memory_in_cgroup`` says the memory limit is
    enforced there (otherwise ``RLIMIT_AS`` is set); ``extra_ro`` maps sandbox paths under
    :data:`INPUT` to host files or folders bound read-only. ``secret_fds`` maps file names to
    open descriptors (pass them with ``pass_fds``) whose contents become 0400 files in
    :data:`SECRETS` (e.g. the hub token of a workspace server): secrets never travel in argv or
    in the environment, and the nested kernel sandbox does not see that folder.
    ``run_binds`` are ``(host folder, name, writable)``: the folder appears at
    ``RUN_BINDS/name`` (a workspace server's socket folder, the hub's socket folder, its event
    log); kernels do not see them either.
    """
    if not command:
        raise ValueError("no command to run in the sandbox")
    from enclave.sandbox.limits import prlimit_options  # host side only

    stage: list[str] = []
    for procs in cgroup_procs:
        stage += ["cg", str(procs)]

    def bind(host: Path, name: str, what: str) -> str:
        host = Path(host)
        if not host.is_absolute() or host.resolve() != host:
            raise ValueError(f"{what} {host} must be an absolute path without symlinks")
        if not host.exists():
            raise ValueError(f"{what} {host} does not exist")
        stage.extend(["bind", str(host), name])
        return f"{STAGE_DIR}/{name}"

    passwd, group = _passwd(spec)
    for name, text in (("passwd", passwd), ("group", group),
                       ("hosts", "127.0.0.1 localhost\n::1 localhost\n"),
                       ("hostname", HOSTNAME + "\n"),
                       ("nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
                                         "hosts: files\nnetworks: files\n")):
        stage += ["file", f"etc/{name}", text]
    for name in HOST_ETC:
        if os.path.exists(f"/etc/{name}"):
            stage += ["bind", os.path.realpath(f"/etc/{name}"), f"etc/{name}"]
    stage += ["file", "empty", ""]
    stage += ["file", f"share/kernels/{KERNEL_NAME}/kernel.json", json.dumps(kernelspec())]

    venv = Path(spec.venv).resolve()
    mounts = [*_system_binds(),
              "--ro-bind", f"{STAGE_DIR}/etc", "/etc",
              "--ro-bind", bind(venv, "venv", "virtual environment"), VENV]
    for hook in editable_hooks(venv):
        mounts += ["--ro-bind", f"{STAGE_DIR}/empty", hook]
    for program in hidden_programs():
        mounts += ["--ro-bind", f"{STAGE_DIR}/empty", program]
    for folder, rel in code_binds(venv):
        bind(folder, f"lib/{rel}", "package folder")
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            stage += ["file", "lib/" + "/".join(parts[:depth]) + "/__init__.py", ""]
    stage += ["file", "lib/.keep", ""]
    mounts += ["--ro-bind", f"{STAGE_DIR}/lib", LIB,
               "--ro-bind", f"{STAGE_DIR}/share", JUPYTER_PATH]
    for index, (dest, host) in enumerate(sorted((extra_ro or {}).items())):
        if not dest.startswith(INPUT + "/") or ".." in dest.split("/"):
            raise ValueError(f"extra read-only path {dest} must lie under {INPUT}")
        mounts += ["--ro-bind", bind(Path(host), f"input{index}", "input"), dest]
    if spec.extract_dir is not None:
        mounts += ["--ro-bind", bind(spec.extract_dir, "data", "extract folder"), DATA]
    mounts += ["--bind", bind(spec.work_dir, "work", "work folder"), WORK]
    if spec.outputs_dir is not None:
        mounts += ["--bind", bind(spec.outputs_dir, "outputs", "outputs folder"), OUTPUTS]
    mounts += ["--proc", "/proc", "--dev", "/dev",
               "--size", str(spec.tmp_bytes), "--tmpfs", TMP,
               "--size", str(spec.tmp_bytes), "--perms", "0700", "--tmpfs", spec.home,
               "--size", str(16 * MiB), "--tmpfs", "/run",
               "--perms", "0700", "--dir", RUNTIME]
    for index, (host, name, writable) in enumerate(run_binds):
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name):
            raise ValueError(f"run bind name {name!r} must be a plain lower-case word")
        staged = bind(Path(host), f"run{index}", "run folder")
        mounts += ["--bind" if writable else "--ro-bind", staged, f"{RUN_BINDS}/{name}"]
    for name, fd in sorted((secret_fds or {}).items()):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name) or fd < 3:
            raise ValueError(f"secret {name!r} (fd {fd}) is not a plain file name and descriptor")
        mounts += ["--perms", "0400", "--ro-bind-data", str(fd), f"{SECRETS}/{name}"]
    mounts += ["--remount-ro", "/", "--chdir", chdir]

    groups = ",".join(str(gid) for _name, gid in spec.project_groups)
    setpriv = [SETPRIV, f"--reuid={spec.uid}", f"--regid={spec.gid}",
               f"--groups={groups}" if groups else "--clear-groups",
               "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all",
               "--no-new-privs", "--"]
    limits = prlimit_options(spec.nproc, spec.cpu_seconds,
                             None if memory_in_cgroup else spec.memory_bytes)
    return [UNSHARE, "--mount", "--propagation", "private", "--",
            SHELL, "-c", STAGE_SCRIPT, "enclave-stage", STAGE_DIR, *stage, "--",
            PRLIMIT, *limits, "--",
            *setpriv,
            BWRAP, *_hardening(nested_userns=spec.allow_nested_userns,
                               die_with_parent=spec.die_with_parent,
                               uid=spec.uid, gid=spec.gid, hostname=HOSTNAME),
            *mounts, *_setenv(sandbox_env(spec, env)), "--", *command]


#: Variables a kernel may inherit from the workspace server; everything else is dropped.
KERNEL_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR",
              "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH",
              "IPYTHONDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
              "JUPYTER_PLATFORM_DIRS", "JPY_SESSION_NAME")


def kernel_argv(connection_file: str, command: Sequence[str], env: Mapping[str, str],
                cwd: str = WORK, tmp_bytes: int = 512 * MiB) -> list[str]:
    """The nested bubblewrap argv for a kernel, built and run inside the workspace sandbox.

    Only :data:`KERNEL_ENV` names of ``env`` pass (never ``JUPYTERHUB_*`` or ``JPY_PARENT_PID``);
    the kernel sees ``/data`` read-only, ``/work`` and ``/outputs``, and its connection folder
    (ZeroMQ ``ipc://`` sockets live there); no network, no new user namespaces.
    """
    conn_dir = os.path.dirname(os.path.abspath(connection_file))
    if conn_dir in ("/", "/usr", "/etc", "/proc", "/dev", OPT) or not os.path.isdir(conn_dir):
        raise ValueError(f"kernel connection folder {conn_dir} is not a runtime folder")
    kept = check_env({k: v for k, v in env.items() if k in KERNEL_ENV})
    home = kept.get("HOME", TMP)
    binds = [*_system_binds(), "--ro-bind", "/etc", "/etc", "--ro-bind", OPT, OPT,
             "--proc", "/proc", "--dev", "/dev",
             "--size", str(tmp_bytes), "--tmpfs", TMP]
    if home != TMP:
        binds += ["--size", str(tmp_bytes), "--perms", "0700", "--tmpfs", home]
    binds += ["--ro-bind-try", DATA, DATA, "--bind", WORK, WORK,
              "--bind-try", OUTPUTS, OUTPUTS, "--bind", conn_dir, conn_dir,
              "--remount-ro", "/",
              "--chdir", cwd if cwd == WORK or cwd.startswith(WORK + "/") else WORK]
    return [BWRAP, *_hardening(nested_userns=False, die_with_parent=True,
                               uid=os.getuid(), gid=os.getgid(), hostname=HOSTNAME + "-kernel"),
            *binds, *_setenv(kept), "--", *command]
