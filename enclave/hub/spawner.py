"""The workspace spawner: one named server per project, in the bubblewrap sandbox.

A server's name is its project id (``/hub/spawn/<user>/<project>``); there is no default
server. At every spawn :func:`enclave.workspaces.sessions.open_workspace` decides (and audits)
through the one policy module; the server then runs as the person's unprivileged account with
the project's group, inside ``bwrap --unshare-all`` (no network), listening on a Unix socket
that the node proxy dials (:mod:`enclave.sandbox.server`). Every :attr:`poll_interval` seconds
:meth:`SandboxSpawner.poll` asks the policy again (a suspended, revoked or expired project, a
withdrawn agreement or an expired accreditation stops the server) and moves the server's
refusal log into the audit chain, and measures the project's disk use (over
:attr:`SandboxSpawner.disk_limit_mib`, the server stops with that reason). :meth:`start`
returns once the server answers on its socket (the hub's own backoff would leave a ready server
waiting for seconds); the server's output goes through :mod:`enclave.sandbox.logcap` into a
size-capped ``server.log``. A stop nobody gave a reason for is audited as idle culling when the
server had been idle past the culler's limit.

Hub restarts do not stop workspaces: servers run without ``--die-with-parent``, in their own
session and cgroup, and ``c.JupyterHub.cleanup_servers = False``; the spawner's state (pid and
its start time, cgroup, socket folder) is kept in the hub's database, so a restarted hub finds
them, polls them, and stops them (SIGTERM, then SIGKILL, to every process of their cgroup).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import hashlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from jupyterhub.spawner import Spawner
from tornado import web
from traitlets import Float, Int, Unicode, default

from enclave.core.context import Enclave
from enclave.core.exceptions import EnclaveError, PermissionDenied
from enclave.hub.sockets import socket_base
from enclave.sandbox import accounts, bwrap, limits, logcap, server
from enclave.sandbox import run as sandbox_run
from enclave.sandbox.bwrap import MiB, SandboxSpec
from enclave.workspaces import sessions
from enclave.workspaces.notebook_runs import NOTEBOOKS_DIR

#: The refusal log inside a server's event folder, and the name the hub moves it to.
EVENTS_NAME = "events.jsonl"
_TAKEN_NAME = "taken.jsonl"
#: Notebooks copied into a person's work folder when it is first created.
SEED_NOTEBOOKS = ("getting_started_fr.ipynb", "getting_started_en.ipynb")
#: At most this much of the refusal log is read per poll.
EVENTS_READ_MAX = 1024 * 1024
#: The server's log in its run area (with ``server.log.1``, written by :mod:`logcap`).
LOG_NAME = "server.log"


@functools.cache
def hub_enclave() -> Enclave:
    """The hub's handle on the enclave (opened once, from ``ENCLAVE_*`` settings)."""
    return Enclave.open()


def run_area(base: Path, username: str, project_id: str) -> Path:
    """``<socket base>/ws/<12 hex>``: a server's socket and event folders (see sockets)."""
    digest = hashlib.sha256(f"{username}\n{project_id}".encode()).hexdigest()[:12]
    return base / "ws" / digest


def _process_start(pid: int) -> int | None:
    """The start time (clock ticks after boot) of ``pid``, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _owned_dir(path: Path, uid: int, gid: int) -> None:
    """A folder owned by the sandbox account, mode 0700; a symlink or file is refused."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise EnclaveError(f"{path} is not a folder; refusing to use it for a workspace")
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, 0o700)


def _seed_work_folder(work_dir: Path, uid: int, gid: int) -> None:
    """Copy the getting-started notebooks into a new work folder, owned by its person."""
    for name in SEED_NOTEBOOKS:
        source = NOTEBOOKS_DIR / name
        if not source.is_file():
            continue
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(work_dir / name, flags, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(source.read_bytes())
            os.fchown(handle.fileno(), uid, gid)


async def _answers_http(socket_path: str, target: str, timeout: float) -> bool:
    """Whether an HTTP server on ``socket_path`` answers ``GET target`` without a 5xx status."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path),
                                                min(5.0, max(timeout, 0.1)))
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "\r\n".encode("ascii", "replace"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), max(timeout, 0.1))
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = line.split()
    return (len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit()
            and int(parts[1]) < 500)


def refusal(status: int, message: str) -> web.HTTPError:
    """An HTTP error whose message the hub's pages show as it is (``jupyterhub_message``)."""
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


class SandboxSpawner(Spawner):
    """Spawns a project's workspace server in the enclave's bubblewrap sandbox."""

    memory_mib = Int(2048, config=True,
                     help="Memory limit of one workspace (server and kernels), in MiB.")
    cpu_cores = Float(1.0, config=True, help="CPU limit of one workspace, in cores.")
    nproc = Int(512, config=True, help="Most processes and threads one workspace may hold.")
    hub_socket = Unicode("", config=True,
                         help="Host path of the hub API's Unix socket (bound read-only into "
                              "the sandbox so that the server reaches the hub).")
    stop_grace_seconds = Float(8.0, config=True,
                               help="Seconds between SIGTERM and SIGKILL on stop.")
    ready_check_seconds = Float(0.05, config=True,
                                help="Seconds between checks that a starting server answers "
                                     "on its socket (the spawner waits itself, so the hub's "
                                     "exponential backoff never delays a ready server).")
    log_max_bytes = Int(8 * 1024 * 1024, config=True,
                        help="Most bytes server.log and server.log.1 hold together.")
    disk_limit_mib = Int(10240, config=True,
                         help="Most MiB a project's work folders and outputs may hold "
                              "together; over it, its workspaces stop (0: no limit).")
    idle_timeout_seconds = Int(3600, config=True,
                               help="The idle culler's limit: a stop after at least this long "
                                    "without activity is audited as idle culling.")

    @default("poll_interval")
    def _poll_interval_default(self) -> int:
        return 20  # with 10 % jitter: a suspended project's servers stop within a minute

    @default("start_timeout")
    def _start_timeout_default(self) -> int:
        return 240  # start() waits until the server answers, up to http_timeout

    @default("http_timeout")
    def _http_timeout_default(self) -> int:
        return 180  # twenty JupyterLab servers starting at once on two busy cores

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pid = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.process_start: int | None = None
        self.cgroup_name = ""
        self.area = ""
        self.stop_reason = ""
        self.closed = True
        self.log_writer: subprocess.Popen[bytes] | None = None

    # -- state kept in the hub's database (a restarted hub finds its servers) -------------------
    def get_state(self) -> dict[str, Any]:
        """The pid, its start time, the cgroup and run area of the running server."""
        state: dict[str, Any] = super().get_state()
        if self.pid:
            state.update(pid=self.pid, process_start=self.process_start,
                         cgroup=self.cgroup_name, area=self.area, closed=self.closed)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` saved."""
        super().load_state(state)
        self.pid = int(state.get("pid", 0) or 0)
        self.process_start = state.get("process_start")
        self.cgroup_name = str(state.get("cgroup", ""))
        self.area = str(state.get("area", ""))
        self.closed = bool(state.get("closed", True))

    def clear_state(self) -> None:
        """Forget the stopped server."""
        super().clear_state()
        self.pid = 0
        self.proc = None
        self.process_start = None
        self.cgroup_name = ""
        self.area = ""

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def project_id(self) -> str:
        """The project this server belongs to: its name."""
        return str(self.name or "")

    def _hub_socket(self) -> Path:
        if self.hub_socket:
            return Path(self.hub_socket)
        parsed = urlparse(self.hub.url)
        if parsed.scheme != "http+unix":
            raise EnclaveError("the sandboxed workspaces reach the hub through a Unix socket "
                               "only: set c.JupyterHub.hub_bind_url = 'http+unix://...'")
        return Path(unquote(parsed.netloc))

    async def _in_thread(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(func, *args, **kwargs))

    # -- start -----------------------------------------------------------------------------------
    async def start(self) -> str:
        """Decide (policy, audited), then start the sandboxed server; return its socket URL."""
        if not self.project_id:
            raise refusal(400, "Un espace de travail s'ouvre pour un projet : choisissez le "
                               "projet sur la page d'accueil (a workspace is opened for a "
                               "project: choose it on the home page).")
        enclave = hub_enclave()
        try:
            workspace = await self._in_thread(sessions.open_workspace, enclave, self.user.name,
                                              self.project_id, server_name=self.name)
        except PermissionDenied as exc:
            raise refusal(403, f"Espace de travail refusé (workspace refused): {exc}") from None
        env = server.hub_env(self.get_env(), self._hub_socket())
        try:
            socket_dir = await self._in_thread(self._launch, enclave, workspace, env)
        except Exception as exc:
            await self._in_thread(sessions.close_workspace, enclave, self.user.name,
                                  self.project_id, reason=f"failed to start: {exc}")
            raise
        self.closed = False
        self.stop_reason = ""
        await self._wait_ready(socket_dir / server.SOCKET_NAME)
        return "http+unix://" + quote(str(socket_dir / server.SOCKET_NAME), safe="")

    async def _wait_ready(self, socket_path: Path) -> None:
        """Return as soon as the server answers HTTP on its socket.

        JupyterHub's own wait after ``start`` retries with an exponential backoff (up to 5 s
        between tries), which left a ready server unused for seconds; checking here every
        :attr:`ready_check_seconds` (a ``stat`` until the socket exists) makes the hub's first
        try succeed. A server that exits while starting fails the spawn at once.
        """
        target = f"{self.server.base_url}api" if self.server is not None else "/api"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        while loop.time() < deadline:
            status = self._exit_status()
            if status is not None:
                self.stop_reason = f"failed to start: the server exited (status {status})"
                self.log.error("enclave: workspace %s/%s exited while starting:\n%s",
                               self.user.name, self.project_id, self._log_tail())
                raise refusal(500, "L'espace de travail n'a pas démarré (the workspace "
                                   "server stopped while starting; see the hub's log).")
            if socket_path.exists() and await _answers_http(
                    str(socket_path), target, deadline - loop.time()):
                return
            await asyncio.sleep(self.ready_check_seconds)
        self.stop_reason = f"failed to start: no answer within {self.http_timeout} s"
        raise TimeoutError(f"the workspace server did not answer within {self.http_timeout} s")

    def _log_tail(self, size: int = 3000) -> str:
        """The end of the server's log (for the hub's log when it fails to start)."""
        try:
            with open(Path(self.area) / LOG_NAME, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _launch(self, enclave: Enclave, workspace: sessions.Workspace,
                env: dict[str, str]) -> Path:
        """Prepare the account, group and folders, then start the sandbox (blocking: a thread)."""
        sandbox_run.require_sandbox()
        sandbox_run.precompile_sandbox_code()
        group = accounts.ensure_project_group(workspace.project_id)
        account = accounts.ensure_account(workspace.username)
        accounts.grant_extract(group, workspace.extract_dir)
        accounts.prepare_outputs(group, workspace.outputs_dir)
        fresh = not workspace.work_dir.exists()
        accounts.prepare_work_dir(account, workspace.work_dir)
        if fresh:
            _seed_work_folder(workspace.work_dir, account.uid, account.gid)
        area = run_area(socket_base(enclave.settings.run_dir), workspace.username,
                        workspace.project_id)
        area.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        area.mkdir(mode=0o711, exist_ok=True)
        socket_dir, events_dir = area / "s", area / "e"
        _owned_dir(socket_dir, account.uid, account.gid)
        _owned_dir(events_dir, account.uid, account.gid)
        with contextlib.suppress(FileNotFoundError):
            (socket_dir / server.SOCKET_NAME).unlink()
        spec = SandboxSpec(account.name, account.uid, account.gid, ((group.name, group.gid),),
                           workspace.extract_dir.resolve(), workspace.work_dir.resolve(),
                           workspace.outputs_dir.resolve(),
                           memory_bytes=self.memory_mib * MiB, nproc=self.nproc,
                           cpu_cores=self.cpu_cores, die_with_parent=False,
                           allow_nested_userns=True)
        hub_socket = self._hub_socket()
        cgroup = limits.create_cgroup(f"ws-{area.name}-{secrets.token_hex(4)}",
                                      spec.memory_bytes, spec.nproc, spec.cpu_cores)
        fd = sandbox_run.secret_fd(json.dumps(env).encode())
        try:
            argv = server.server_argv(spec, socket_dir=socket_dir,
                                      hub_socket_dir=hub_socket.parent, events_dir=events_dir,
                                      hub_env_fd=fd,
                                      cgroup_procs=cgroup.procs_files if cgroup else (),
                                      memory_in_cgroup=bool(cgroup and cgroup.limits_memory),
                                      disk_limit_bytes=self.disk_limit_mib * MiB)
            self.log_writer, log_fd = self._start_log_writer(area / LOG_NAME)
            try:
                self.proc = subprocess.Popen(  # noqa: S603 - argv from server.server_argv, no shell
                    argv, env=bwrap.STAGE_ENV, stdin=subprocess.DEVNULL, stdout=log_fd,
                    stderr=subprocess.STDOUT, cwd="/", close_fds=True, pass_fds=(fd,),
                    start_new_session=True)
            finally:
                os.close(log_fd)
        except BaseException:
            if cgroup is not None:
                cgroup.close()
            raise
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        self.process_start = _process_start(self.pid)
        self.cgroup_name = cgroup.name if cgroup else ""
        self.area = str(area)
        self.log.info("enclave: workspace %s/%s started (pid %s, %s)", workspace.username,
                      workspace.project_id, self.pid,
                      ", ".join(cgroup.describe()) if cgroup else "no cgroup")
        return socket_dir

    def _start_log_writer(self, path: Path) -> tuple[subprocess.Popen[bytes], int]:
        """Start :mod:`enclave.sandbox.logcap` on a pipe; return it and the pipe's write end.

        The writer runs outside the sandbox and its cgroup (every process there runs as the
        person's account); it holds one 64 KiB buffer, ends when the server and its kernels
        have all closed the pipe, and outlives a hub restart like the server.
        """
        read_end, write_end = os.pipe()
        try:
            writer = subprocess.Popen(  # noqa: S603 - our interpreter and module, no shell
                [sys.executable, "-I", "-S", logcap.__file__, str(path),
                 str(self.log_max_bytes)],
                env=bwrap.STAGE_ENV, stdin=read_end, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd="/", close_fds=True, start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return writer, write_end

    # -- poll ------------------------------------------------------------------------------------
    def _exit_status(self) -> int | None:
        """None while the server runs; its exit status (or 0) once it is gone."""
        if not self.pid:
            return 0
        if self.proc is not None:
            return self.proc.poll()
        start = _process_start(self.pid)
        if start is None or (self.process_start is not None and start != self.process_start):
            return 0  # gone, or the pid now belongs to another process
        return None

    async def poll(self) -> int | None:
        """Running and still allowed: None. Otherwise stop it (if needed) and return a status."""
        status = self._exit_status()
        if self.area:
            await self._in_thread(self._collect_events)
        if status is not None:
            if not self.closed:
                self.stop_reason = self.stop_reason or f"the server exited (status {status})"
            return status
        reason = await self._in_thread(sessions.stop_reason, hub_enclave(), self.user.name,
                                       self.project_id)
        if reason is None and self.disk_limit_mib:
            reason = await self._in_thread(sessions.disk_stop_reason, hub_enclave(),
                                           self.project_id, self.disk_limit_mib * MiB)
        if reason is None:
            return None
        self.log.warning("enclave: stopping workspace %s/%s: %s", self.user.name,
                         self.project_id, reason)
        self.stop_reason = f"no longer allowed: {reason}"
        await self._in_thread(self._terminate)
        await self._record_close()
        return self._exit_status() or 1

    def _collect_events(self) -> None:
        """Move the server's refusal log into the audit chain (the log is untrusted input)."""
        events_dir = Path(self.area) / "e"
        taken = events_dir / _TAKEN_NAME
        try:
            os.rename(events_dir / EVENTS_NAME, taken)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.log.warning("enclave: cannot take %s: %s", events_dir, exc)
            return
        try:
            fd = os.open(taken, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(EVENTS_READ_MAX) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        with contextlib.suppress(OSError):
            taken.unlink()
        attempts: list[Any] = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                attempts.append(json.loads(line))
            except ValueError:
                attempts.append(None)
        if attempts:
            sessions.record_download_attempts(hub_enclave(), self.user.name, self.project_id,
                                              attempts)

    # -- stop ------------------------------------------------------------------------------------
    def _terminate(self) -> None:
        """SIGTERM every process of the server (its cgroup and process group), then SIGKILL."""
        cgroup = limits.existing_cgroup(self.cgroup_name) if self.cgroup_name else None

        def signal_all(signum: int) -> None:
            if self._exit_status() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signum)
            for pid in cgroup.pids() if cgroup else []:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

        def alive() -> bool:
            return self._exit_status() is None or bool(cgroup and cgroup.pids())

        if self.pid:
            signal_all(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_grace_seconds
            while alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive():
                signal_all(signal.SIGKILL)
        if cgroup is not None:
            cgroup.close()
        for child in (self.proc, self.log_writer):
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)

    def _idle_seconds(self) -> float | None:
        """Seconds since the server's last recorded activity (the idle culler's measure)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        last = getattr(orm_spawner, "last_activity", None)
        if last is None:
            return None
        if last.tzinfo is None:
            last = last.replace(tzinfo=datetime.UTC)
        return (datetime.datetime.now(datetime.UTC) - last).total_seconds()

    def _default_stop_reason(self) -> str:
        """Why a stop nobody gave a reason for happened: idle culling, or a person's request.

        The idle culler stops a server whose last activity (as the hub records it) is older
        than its timeout, the same :attr:`idle_timeout_seconds`; such a stop is audited as
        idle culling with the idle time.
        """
        idle = self._idle_seconds()
        if idle is not None and self.idle_timeout_seconds and idle >= self.idle_timeout_seconds:
            return (f"idle: no activity for {int(idle)} s, over the idle limit of "
                    f"{self.idle_timeout_seconds} s (idle culler)")
        return "stopped (by the person or an administrator)"

    async def _record_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._in_thread(sessions.close_workspace, hub_enclave(), self.user.name,
                              self.project_id,
                              reason=self.stop_reason or self._default_stop_reason())

    async def run_post_stop_hook(self) -> None:  # type: ignore[override]
        """After every stop (also of a server that exited by itself): clean up and audit once.

        The hub calls :meth:`stop` only for a server still running; a server that crashed or
        failed to start still leaves its kernels' cgroup and its close to record.
        """
        if not self.closed or (self.cgroup_name and limits.existing_cgroup(self.cgroup_name)):
            await self._in_thread(self._terminate)
        await self._record_close()
        super().run_post_stop_hook()

    async def stop(self, now: bool = False) -> None:
        """Stop the server and its kernels; audit it once."""
        if self.area:
            await self._in_thread(self._collect_events)
        await self._in_thread(self._terminate)
        await self._record_close()
        if self.area:
            with contextlib.suppress(OSError):
                (Path(self.area) / "s" / server.SOCKET_NAME).unlink()
