"""A workspace's log writer: copies the server's output into ``server.log``, bounded in size.

The workspace server and its kernels write to a pipe (a kernel can write to the file
descriptors it inherited); this small process, started by the hub outside the sandbox and
run as ``python -I -S logcap.py <log file> <max bytes>``, is the only writer of the log. When
``server.log`` would grow past half the limit it becomes ``server.log.1`` (replacing the older
one) and a new ``server.log`` starts, so the two files never hold more than the limit together
and the newest output is kept. Nothing the sandbox writes can make the log fill the disk.

It ignores SIGTERM so that it copies the server's last lines when a workspace stops, and ends
when the last process holding the pipe is gone (the server and its kernels). It does not die
with the hub: a hub restart leaves workspaces and their logs running. Standard library only.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

#: Smallest accepted limit: a rotation never happens for less than this.
MIN_BYTES = 64 * 1024
CHUNK = 64 * 1024


def _open(path: str) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def copy_capped(source: int, path: str, max_bytes: int) -> None:
    """Copy ``source`` (a pipe) into ``path`` until end of file, rotating at ``max_bytes // 2``."""
    half = max(max_bytes, MIN_BYTES) // 2
    fd = _open(path)
    size = os.fstat(fd).st_size
    try:
        while True:
            try:
                chunk = os.read(source, CHUNK)
            except InterruptedError:  # pragma: no cover - retried by Python itself since 3.5
                continue
            if not chunk:
                return
            if size + len(chunk) > half:
                os.close(fd)
                os.replace(path, path + ".1")
                fd = _open(path)
                size = 0
            chunk = chunk[:half]
            _write_all(fd, chunk)
            size += len(chunk)
    finally:
        os.close(fd)


def main(argv: Sequence[str] | None = None) -> None:
    """``logcap.py <log file> <max bytes>``: copy standard input there until it closes."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[0].startswith("/") or not args[1].isdigit():
        raise SystemExit("usage: logcap.py /absolute/server.log MAX_BYTES")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    copy_capped(0, args[0], int(args[1]))


if __name__ == "__main__":
    main()
