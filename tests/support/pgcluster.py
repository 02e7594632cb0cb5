"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, start on a Unix socket, drop.

Runs the server as the ``postgres`` system account when the current user is root (PostgreSQL
refuses to run as root), listening only on a socket in a private temporary folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL server binaries, if any."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster."""

    bindir: Path
    root: Path
    port: int
    as_user: str | None

    @property
    def socket_dir(self) -> Path:
        """Where the server's Unix socket lives."""
        return self.root / "sock"

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL of a database of this cluster (psycopg 3, Unix socket)."""
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.socket_dir}&port={self.port}"

    def _run(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def psql(self, sql: str, dbname: str = "postgres") -> None:
        """Run one SQL statement as the superuser."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                             dbname=dbname, autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.root / "data", "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Create and start a cluster (fsync off: test data only)."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (install postgresql)")
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="enclave-pg-"))
    (root / "sock").mkdir()
    if as_user:
        shutil.chown(root, user=as_user)
        shutil.chown(root / "sock", user=as_user)
        os.chmod(root, 0o755)
    cluster = Cluster(bindir, root, _free_port(), as_user)
    cluster._run(bindir / "initdb", "-D", root / "data", "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C.UTF-8")
    options = (f"-F -p {cluster.port} -k {cluster.socket_dir} -c listen_addresses='' "
               "-c max_connections=200 -c synchronous_commit=off -c full_page_writes=off")
    cluster._run(bindir / "pg_ctl", "-D", root / "data", "-o", options, "-l",
                 root / "server.log", "-w", "start")
    return cluster
