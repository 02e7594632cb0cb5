"""The workspace log writer keeps server.log bounded whatever the sandbox writes to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from enclave.sandbox import logcap


def _sizes(log: Path) -> int:
    return sum(p.stat().st_size for p in (log, Path(f"{log}.1")) if p.exists())


def test_a_flood_is_capped_and_the_newest_output_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    read_end, write_end = os.pipe()
    writer = subprocess.Popen([sys.executable, "-I", "-S", logcap.__file__, str(log), "200000"],
                              stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    with os.fdopen(write_end, "wb") as pipe:
        for index in range(400):
            pipe.write(f"line {index:05d} ".encode() + b"x" * 5000 + b"\n")
        pipe.write(b"the last line\n")
    assert writer.wait(timeout=30) == 0
    assert _sizes(log) <= 200000
    assert log.read_bytes().endswith(b"the last line\n")
    assert b"line 00399" in log.read_bytes() + Path(f"{log}.1").read_bytes()
    assert b"line 00000" not in log.read_bytes() + Path(f"{log}.1").read_bytes()
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_a_single_huge_write_is_cut_to_the_limit(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    read_end, write_end = os.pipe()
    writer = subprocess.Popen([sys.executable, "-I", "-S", logcap.__file__, str(log), "131072"],
                              stdin=read_end)
    os.close(read_end)
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(b"y" * 5_000_000)
    assert writer.wait(timeout=30) == 0
    assert _sizes(log) <= 131072


def test_sigterm_does_not_stop_it_before_the_last_lines_are_copied(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    read_end, write_end = os.pipe()
    writer = subprocess.Popen([sys.executable, "-I", "-S", logcap.__file__, str(log), "100000"],
                              stdin=read_end)
    os.close(read_end)
    time.sleep(0.3)
    writer.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert writer.poll() is None
    os.write(write_end, b"shutting down\n")
    os.close(write_end)
    assert writer.wait(timeout=30) == 0
    assert log.read_bytes() == b"shutting down\n"


def test_it_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (tmp_path / "server.log").symlink_to(target)
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        logcap.copy_capped(read_end, str(tmp_path / "server.log"), 100000)
    except OSError:
        pass
    else:
        raise AssertionError("a symlinked log was written through")
    finally:
        os.close(read_end)
    assert target.read_bytes() == b"keep"
