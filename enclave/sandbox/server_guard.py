"""Download controls of the sandboxed Jupyter server: what its web interface may serve.

Network isolation keeps kernels from sending data out, but the server's own HTTP routes would
still hand files to the browser (PLATFORM-NOTES). This module, loaded inside the workspace
sandbox by :mod:`enclave.sandbox.server`, closes those routes:

- ``/files/...`` and ``/nbconvert/...`` (JupyterLab's "Download" and "Export as") answer 403;
- the contents API (:class:`GuardedContentsManager`, rooted at ``/work``) serves the content of
  notebooks up to :attr:`~GuardedContentsManager.max_notebook_bytes` (a notebook must open and
  save) and of small source and text files with an allowed suffix; any other file (data
  formats, binaries, large files) is listed but its content is refused; ``/data`` and
  ``/outputs`` are outside its root and never reachable;
- a path whose real location (symlinks resolved) lies outside ``/work`` is refused, and hidden
  from listings: a kernel cannot plant ``/work/x -> /data/eleves.parquet`` for the server;
- uploads and saves are limited in size (:attr:`~GuardedContentsManager.max_upload_bytes`),
  and refused (507) when ``/work`` and ``/outputs`` would hold more than
  :attr:`~GuardedContentsManager.disk_limit_bytes` together (the hub also stops a project's
  workspaces when its folders exceed the limit, whoever wrote the files).

Every refusal is appended as one JSON line to :data:`EVENTS_FILE`, a folder only the server
sees (not the kernels); the hub reads it into the audit chain (:mod:`enclave.hub.spawner`), so
the sandbox needs no database credential and no route to the hub beyond its own API token.
What stays possible is reading data on screen: the person sees what their kernels print.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import time
from pathlib import PurePosixPath
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import Int, Set, Unicode

from enclave.sandbox.bwrap import OUTPUTS, RUN_BINDS, WORK
from enclave.sandbox.disk import disk_usage

#: Where refusals are logged, one JSON object per line (bound read-write for the server only).
EVENTS_FILE = f"{RUN_BINDS}/events/events.jsonl"
#: The log stops growing past this size (the hub reads and audits it every poll).
EVENTS_MAX_BYTES = 1024 * 1024
#: Suffixes of text files whose content the editor may open (deny by default).
TEXT_SUFFIXES = frozenset({".py", ".md", ".txt", ".r", ".sql", ".toml", ".yaml", ".yml",
                           ".cfg", ".ini", ".rst", ".tex", ".bib"})
_listing: contextvars.ContextVar[bool] = contextvars.ContextVar("enclave_listing", default=False)


def log_refusal(kind: str, path: str, detail: str, events_file: str = EVENTS_FILE) -> None:
    """Append one refusal to the event log (never follows a symlink; bounded in size)."""
    line = json.dumps({"kind": kind, "path": path[:300], "detail": detail[:300],
                       "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(OSError):
        fd = os.open(events_file, flags, 0o600)
        try:
            if os.fstat(fd).st_size + len(line) <= EVENTS_MAX_BYTES:
                os.write(fd, line.encode())
        finally:
            os.close(fd)


class RefusedDownloadHandler(JupyterHandler):
    """Answers 403 to a download route (``/files/``, ``/nbconvert/``) and logs the attempt."""

    def initialize(self, kind: str = "files", events_file: str = EVENTS_FILE) -> None:
        """``kind`` names the route in the audit event."""
        self.kind = kind
        self.events_file = events_file

    def _refuse(self, path: str) -> None:
        log_refusal(self.kind, path, f"{self.request.method} {self.kind} download refused",
                    self.events_file)
        self.log.warning("enclave: refused %s download of %r", self.kind, path)
        raise web.HTTPError(403, "Le téléchargement depuis l'enclave est interdit : les "
                                 "résultats sortent par une demande de sortie contrôlée "
                                 "(downloads are refused: outputs leave through a checked "
                                 "output request).")

    @web.authenticated
    def get(self, path: str = "", *_args: Any) -> None:
        """Refuse."""
        self._refuse(path)

    @web.authenticated
    def head(self, path: str = "", *_args: Any) -> None:
        """Refuse."""
        self._refuse(path)

    @web.authenticated
    def post(self, path: str = "", *_args: Any) -> None:
        """Refuse (nbconvert converts a posted notebook)."""
        self._refuse(path)


#: Loaded by ``ServerApp.extra_services``, *before* the server's own handlers, so these win.
default_handlers = [
    (r"/files/(.*)", RefusedDownloadHandler, {"kind": "files"}),
    (r"/nbconvert/(.*)", RefusedDownloadHandler, {"kind": "nbconvert"}),
]


class GuardedContentsManager(AsyncLargeFileManager):
    """The contents API confined to the real ``/work``, serving only notebooks and small text."""

    max_notebook_bytes = Int(20 * 1024 * 1024, config=True,
                             help="Largest notebook whose content the contents API returns.")
    max_text_bytes = Int(256 * 1024, config=True,
                         help="Largest text file (allowed suffix) whose content is returned.")
    max_upload_bytes = Int(10 * 1024 * 1024, config=True,
                           help="Largest file an upload or a save may write.")
    text_suffixes = Set(set(TEXT_SUFFIXES), config=True,
                        help="Suffixes of text files whose content may be opened.")
    events_file = Unicode(EVENTS_FILE, config=True, help="Where refusals are logged.")
    disk_limit_bytes = Int(0, config=True,
                           help="Most bytes /work and /outputs may hold together; a save "
                                "that would go over is refused (0: no limit).")
    outputs_dir = Unicode(OUTPUTS, config=True,
                          help="The outputs folder counted with the root in the disk limit.")

    def _refuse(self, kind: str, path: str, detail: str, status: int = 403) -> web.HTTPError:
        log_refusal(kind, path, detail, self.events_file)
        self.log.warning("enclave: refused %s %r: %s", kind, path, detail)
        return web.HTTPError(status, f"{path}: {detail}")

    def _get_os_path(self, path: str) -> str:
        """The OS path, refusing any whose real location is outside the real root."""
        os_path: str = super()._get_os_path(path)
        root = os.path.realpath(self.root_dir)
        real = os.path.realpath(os_path)
        if real != root and not real.startswith(root + os.sep):
            if _listing.get():
                raise OSError(errno.ELOOP, "outside the work folder")  # hidden from listings
            raise self._refuse("symlink", path, f"leads outside {WORK}", 404)
        return os_path

    async def _dir_model(self, path: str, content: bool = True) -> Any:
        """A listing without entries that lead outside the root."""
        token = _listing.set(True)
        try:
            return await super()._dir_model(path, content=content)
        finally:
            _listing.reset(token)

    async def get(self, path: str, content: bool = True, type: str | None = None,
                  format: str | None = None, require_hash: bool = False) -> Any:
        """The model; content only for notebooks and small text files of allowed suffixes."""
        path = path.strip("/")
        if content:
            os_path = self._get_os_path(path)
            if os.path.isfile(os_path):
                size = os.stat(os_path).st_size
                if type == "notebook" or (type is None and path.endswith(".ipynb")):
                    if size > self.max_notebook_bytes:
                        raise self._refuse("contents", path, f"notebook of {size} bytes, over "
                                           f"{self.max_notebook_bytes}")
                elif PurePosixPath(path).suffix.lower() not in self.text_suffixes:
                    raise self._refuse("contents", path, "only notebooks and text files open "
                                       "here; read data from a kernel")
                elif size > self.max_text_bytes or format == "base64":
                    raise self._refuse("contents", path, f"text file of {size} bytes, over "
                                       f"{self.max_text_bytes}, or binary")
        model = await super().get(path, content=content, type=type, format=format,
                                  require_hash=require_hash)
        if content and model.get("format") == "base64":
            raise self._refuse("contents", path, "binary content is not served")
        return model

    def _incoming_size(self, model: dict[str, Any]) -> int:
        body = model.get("content")
        if body is None:
            return 0
        if model.get("format") == "base64" and isinstance(body, str):
            return len(body) * 3 // 4
        if isinstance(body, str):
            return len(body.encode("utf-8", "surrogatepass"))
        return len(json.dumps(body))

    async def save(self, model: dict[str, Any], path: str = "") -> Any:
        """Save, refusing anything that would make a file over :attr:`max_upload_bytes`."""
        path = path.strip("/")
        size = self._incoming_size(model)
        chunk = model.get("chunk")
        os_path = self._get_os_path(path)
        if isinstance(chunk, int) and chunk not in (1,) and os.path.isfile(os_path):
            size += os.stat(os_path).st_size
        if size > self.max_upload_bytes:
            if isinstance(chunk, int) and chunk != 1:
                with contextlib.suppress(OSError):
                    os.unlink(os_path)  # drop the partial upload
            raise self._refuse("upload", path, f"{size} bytes, over {self.max_upload_bytes}",
                               413)
        if self.disk_limit_bytes:
            used = disk_usage((self.root_dir, self.outputs_dir))
            if used is None or used + size > self.disk_limit_bytes:
                shown = "too many files" if used is None else f"{used} bytes used"
                self.log.warning("enclave: refused saving %r: disk limit (%s)", path, shown)
                raise web.HTTPError(507, f"{path}: le projet dépasserait sa limite d'espace "
                                         f"disque (the project would exceed its disk limit of "
                                         f"{self.disk_limit_bytes} bytes: {shown})")
        return await super().save(model, path)
