"""Start a process, or a papermill run, inside the sandbox and wait for it, bounded in time.

:func:`run_in_sandbox` is the one place that starts a sandbox from the host: it creates the
cgroup, builds the argv with :func:`enclave.sandbox.bwrap.sandbox_argv`, runs it as root with
the stage environment, stdin closed and ``cwd=/``, keeps only the tail of the output, kills
the sandbox at the deadline and removes the cgroup. :func:`run_papermill` runs a notebook with
papermill inside the sandbox, each kernel in the nested kernel sandbox.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from enclave.core.files import write_atomic
from enclave.sandbox import bwrap, limits
from enclave.sandbox.bwrap import SandboxSpec
from enclave.sandbox.exceptions import SandboxError, SandboxUnavailable

#: How much of a sandboxed process's output is kept (the end of it).
LOG_TAIL = 64 * 1024
_NOTEBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.ipynb")
_TOOLS = (bwrap.BWRAP, bwrap.SETPRIV, bwrap.PRLIMIT, bwrap.UNSHARE, bwrap.SHELL)


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed process ended: its status, the tail of its output, what was enforced."""

    returncode: int
    log: str
    timed_out: bool
    seconds: float
    enforced: tuple[str, ...]
    memory_peak: int | None
    oom_kills: int
    pids_peak: int | None = None


def unavailable_reason() -> str | None:
    """Why this machine cannot run the sandbox, or None when it can."""
    if os.geteuid() != 0:
        return ("the sandbox is started by root (it creates per-user accounts and switches to "
                "them before bubblewrap); this process is not root")
    for tool in _TOOLS:
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing (Debian packages bubblewrap and util-linux)"
    return _probe()


@functools.cache
def _probe() -> str | None:
    """Run ``true`` in a minimal unprivileged bubblewrap once; the reason if it fails."""
    argv = [bwrap.SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            bwrap.BWRAP, "--unshare-all", "--unshare-user", "--disable-userns",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        proc = subprocess.run(argv, env=bwrap.STAGE_ENV, stdin=subprocess.DEVNULL,  # noqa: S603 - fixed argv probing bubblewrap
                              capture_output=True, text=True, timeout=30, check=False, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if proc.returncode != 0:
        return ("unprivileged bubblewrap does not work here (user namespaces disabled?): "
                + proc.stderr.strip()[-300:])
    return None


def require_sandbox() -> None:
    """Raise :class:`SandboxUnavailable` with the reason when the sandbox cannot run here."""
    reason = unavailable_reason()
    if reason is not None:
        raise SandboxUnavailable(reason)


class _Tail:
    """Drain a pipe in a thread, keeping only its last :data:`LOG_TAIL` bytes (no disk)."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes] | None) -> None:
        if pipe is None:
            return
        with pipe:
            while chunk := os.read(pipe.fileno(), 65536):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= LOG_TAIL:
                    self._size -= len(self._chunks.popleft())

    def text(self, wait: float = 5.0) -> str:
        """The kept output; waits for the pipe to close (the sandbox's last process gone)."""
        self._thread.join(wait)
        return b"".join(self._chunks)[-LOG_TAIL:].decode("utf-8", "replace")


@functools.cache
def precompile_sandbox_code() -> None:
    """Write the bytecode of the packages bound into the sandbox (once per process).

    Inside, the code is read-only and ``PYTHONDONTWRITEBYTECODE`` is set, so a module without
    its ``__pycache__`` entry (modules only the sandbox imports, such as the server's guard and
    the kernel launcher) would be compiled again at every start. Files are written by root
    with the source's mode, so every sandbox account can read them.
    """
    import compileall

    for folder, _name in bwrap.code_binds(Path(sys.prefix)):
        compileall.compile_dir(str(folder), quiet=2, workers=1)


def secret_fd(data: bytes) -> int:
    """A memory-only file holding ``data``, rewound, for :func:`bwrap.sandbox_argv` secrets."""
    fd = os.memfd_create("enclave-secret", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def run_in_sandbox(spec: SandboxSpec, command: Sequence[str], *, timeout: float,
                   env: Mapping[str, str] | None = None,
                   extra_ro: Mapping[str, Path] | None = None,
                   secret_files: Mapping[str, bytes] | None = None) -> SandboxResult:
    """Run ``command`` in the sandbox described by ``spec``; kill it at ``timeout`` seconds.

    ``secret_files`` become 0400 files in :data:`bwrap.SECRETS`, passed by descriptor.
    """
    require_sandbox()
    precompile_sandbox_code()
    fds = {name: secret_fd(data) for name, data in (secret_files or {}).items()}
    group = limits.create_cgroup(f"{spec.user}-{secrets.token_hex(6)}", spec.memory_bytes,
                                 spec.nproc, spec.cpu_cores)
    try:
        argv = bwrap.sandbox_argv(spec, command, env=env,
                                  cgroup_procs=group.procs_files if group else (),
                                  memory_in_cgroup=bool(group and group.limits_memory),
                                  extra_ro=extra_ro, secret_fds=fds)
        enforced = [*(group.describe() if group else []),
                    *[f"rlimit: {opt}" for opt in limits.prlimit_options(
                        spec.nproc, spec.cpu_seconds,
                        None if group and group.limits_memory else spec.memory_bytes)]]
        started = time.monotonic()
        timed_out = False
        proc = subprocess.Popen(argv, env=bwrap.STAGE_ENV, stdin=subprocess.DEVNULL,  # noqa: S603 - argv built by bwrap.sandbox_argv, no shell
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/",
                                close_fds=True, pass_fds=tuple(fds.values()))
        for fd in fds.values():
            os.close(fd)
        fds.clear()
        tail = _Tail(proc.stdout)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()  # bwrap dies; --die-with-parent and the cgroup take the rest
            returncode = proc.wait()
        seconds = time.monotonic() - started
        text = tail.text()
        peak = group.memory_peak() if group else None
        ooms = group.oom_kills() if group else 0
        pids_peak = group.pids_peak() if group else None
    finally:
        for fd in fds.values():
            os.close(fd)
        if group is not None:
            group.close()
    return SandboxResult(returncode, text, timed_out, seconds, tuple(enforced), peak, ooms,
                         pids_peak)


def plain_notebook_name(name: str) -> bool:
    """Whether ``name`` is a plain ``.ipynb`` file name usable inside ``/work``."""
    return bool(_NOTEBOOK_NAME.fullmatch(name))


def run_papermill(spec: SandboxSpec, notebook: Path, executed_name: str, *,
                  parameters: Mapping[str, object] | None = None, timeout: float = 600,
                  nested_kernel: bool = True) -> SandboxResult:
    """Execute ``notebook`` with papermill in the sandbox into ``/work/<executed_name>``.

    The notebook is bound read-only; ``extract_dir`` and ``outputs_dir`` are passed as the
    sandbox's ``/data`` and ``/outputs``. With ``nested_kernel`` (which needs
    ``spec.allow_nested_userns``) the kernel runs in the nested kernel sandbox.
    """
    if not _NOTEBOOK_NAME.fullmatch(executed_name):
        raise SandboxError(f"executed notebook name {executed_name!r} must be a plain .ipynb "
                           "file name")
    if nested_kernel and not spec.allow_nested_userns:
        raise SandboxError("the nested kernel sandbox needs allow_nested_userns=True")
    source = f"{bwrap.INPUT}/notebook.ipynb"
    values: dict[str, object] = {"extract_dir": bwrap.DATA, "outputs_dir": bwrap.OUTPUTS}
    for key, value in (parameters or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SandboxError(f"notebook parameter name {key!r} is not an identifier")
        values[key] = value
    command = [bwrap.PYTHON, "-m", "enclave.sandbox.notebook", source,
               f"{bwrap.WORK}/{executed_name}",
               "--kernel", bwrap.KERNEL_NAME if nested_kernel else "python3",
               "--cwd", bwrap.WORK, "--parameters", json.dumps(values, default=str)]
    return run_in_sandbox(spec, command, timeout=timeout,
                          env={"JPY_SESSION_NAME": notebook.name},
                          extra_ro={source: Path(notebook).resolve()})


def copy_out(src: Path, dst: Path, *, owner: tuple[int, int] | None = None,
             max_bytes: int = 64 * 1024 * 1024) -> None:
    """Copy a file a sandbox wrote to ``dst`` as root, refusing symlinks and special files.

    The copy is written atomically with mode 0640, owned by root or by ``owner`` (uid, gid).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(src, flags)
    except OSError as exc:
        raise SandboxError(f"the sandbox left no plain file at {src.name}: "
                           f"{exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not (info.st_mode & 0o170000 == 0o100000) or info.st_nlink != 1:
            raise SandboxError(f"{src.name} is not a plain file the sandbox wrote; refused")
        if info.st_size > max_bytes:
            raise SandboxError(f"{src.name} is {info.st_size} bytes, over {max_bytes}")
        data = handle.read(max_bytes + 1)
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dst, data)
    if owner is not None:
        os.chown(dst, *owner, follow_symlinks=False)


def scratch_dir(owner_uid: int, owner_gid: int) -> Path:
    """A fresh ``<root-owned 0700 folder>/work`` owned by the sandbox account, for ``/work``.

    The root-owned parent keeps the account from swapping its folder for a symlink between
    the argv check and the root stage's bind (as it could directly in the sticky ``/tmp``).
    """
    parent = Path(tempfile.mkdtemp(prefix="enclave-run-"))
    work = parent / "work"
    work.mkdir(mode=0o700)
    os.chown(work, owner_uid, owner_gid)
    return work


def remove_scratch(work: Path) -> None:
    """Remove a batch run's scratch folder (symlink-safe: shutil.rmtree uses descriptors)."""
    parent = work.parent
    if not parent.name.startswith("enclave-run-"):
        raise SandboxError(f"{work} is not a scratch folder made by scratch_dir")
    shutil.rmtree(parent, ignore_errors=True)
