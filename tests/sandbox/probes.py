"""Attack code run *inside* a sandbox (a plain process or a kernel), and the host's listeners.

:data:`ATTACKS` is Python source defining ``attack_all(targets) -> dict``: each entry is
``{"harm": bool, "detail": str}`` for one attack. The canary is passed reversed so that the
attack code itself (copied into notebooks and logs) never contains it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

ATTACKS = r'''
import ctypes, json, os, socket, stat

def _try(fn):
    try:
        return True, repr(fn())[:200]
    except BaseException as exc:  # the attack failing is the expected outcome
        return False, f"{type(exc).__name__}: {exc}"[:200]

def attack_all(t):
    # These attacks mount, mknod and write system files: never run them outside a sandbox.
    if os.getuid() == 0 or not os.path.isdir("/opt/enclave/venv") or os.path.exists("/root"):
        raise SystemExit("refusing to run the escape attacks outside the enclave sandbox")
    canary = t["canary_reversed"][::-1]
    out = {}
    def record(name, harm, detail):
        out[name] = {"harm": bool(harm), "detail": str(detail)[:300]}
    out["where"] = {"hostname": socket.gethostname(), "uid": os.getuid(),
                    "groups": os.getgroups(), "pid": os.getpid()}

    def tcp(host, port, expect_banner):
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(100).decode(errors="replace") if expect_banner else "connected"
    ok, detail = _try(lambda: tcp("127.0.0.1", t["tcp_port"], True))
    record("tcp_host_port", ok and canary in detail, detail)
    for name, host in (("tcp_outside", "192.0.2.1"), ("tcp_outside_v6", "2001:db8::1")):
        ok, detail = _try(lambda host=host: tcp(host, 80, False))
        record(name, ok, detail)

    def udp(host, port, payload):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            return s.sendto(payload, (host, port))
    ok, detail = _try(lambda: udp("127.0.0.1", t["udp_port"], b"udp-from-sandbox"))
    record("udp_host_port_sent", False, detail)  # the host listener tells whether it arrived
    ok, detail = _try(lambda: udp("192.0.2.1", 53, b"\x00" * 12))
    record("udp_outside", ok, detail)
    ok, detail = _try(lambda: socket.getaddrinfo("example.org", 443))
    record("dns", ok, detail)

    def abstract():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect("\0" + t["abstract"])
            return s.recv(100)
    ok, detail = _try(abstract)
    record("unix_abstract_socket", ok, detail)

    for label, path in t["forbidden"].items():
        ok, detail = _try(lambda path=path: open(path, "rb").read().decode("latin-1"))
        record("read " + label, ok and canary in detail, detail if not ok else "read")

    found = []
    for top in ("/data", "/work", "/outputs", "/tmp", "/home", "/etc", "/run", "/opt/enclave/lib",
                "/opt/enclave/share", "/opt/enclave/input"):
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > 5_000_000:
                        continue
                    with open(path, "rb") as handle:
                        if canary.encode() in handle.read():
                            found.append(path)
                except OSError:
                    pass
    record("canary anywhere in the sandbox", found, found)

    for label, pid in (("1", "1"), ("<host pid>", str(t["host_pid"])), ("self", "self")):
        ok, detail = _try(lambda pid=pid: open(f"/proc/{pid}/environ", "rb").read()
                          .decode("latin-1"))
        record(f"/proc/{label}/environ", ok and (canary in detail or "ENCLAVE_" in detail
                                                 or "JUPYTERHUB_" in detail), detail[:120])
    visible = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                visible.append(open(f"/proc/{entry}/cmdline", "rb").read()
                               .replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    ok, host_cmdline = _try(lambda: open(f"/proc/{t['host_pid']}/cmdline", "rb").read()
                            .decode(errors="replace"))
    host_seen = ok and "pytest" in host_cmdline
    record("host processes visible", host_seen, host_cmdline)
    record("parent papermill visible from kernel",
           t.get("in_kernel") and any("enclave.sandbox.notebook" in c for c in visible),
           [c[:80] for c in visible[:10]])
    ok, detail = _try(lambda: os.kill(t["host_pid"], 0))
    record("signal host process", ok and host_seen, detail)

    env_bad = sorted(k for k, v in os.environ.items()
                     if k.startswith(("ENCLAVE_", "JUPYTERHUB_")) or canary in v
                     or any(w in k.upper() for w in ("TOKEN", "SECRET", "PASSWORD")))
    record("secret environment", env_bad, env_bad or sorted(os.environ))

    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
                  if ":\t" in line)
    caps = {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    record("capabilities", any(int(v, 16) for v in caps.values()), caps)
    record("no_new_privs unset", status.get("NoNewPrivs", "").strip() != "1",
           status.get("NoNewPrivs"))
    record("runs as root", os.getuid() == 0 or os.geteuid() == 0, os.getuid())

    extract = sorted(os.listdir("/data")) if os.path.isdir("/data") else ["missing"]
    target = "/data/" + extract[0]
    for name, fn in (("write new file in /data", lambda: open("/data/x", "w").write("x")),
                     ("overwrite extract file", lambda: open(target, "r+b").write(b"x")),
                     ("chmod extract file", lambda: os.chmod(target, 0o666)),
                     ("delete extract file", lambda: os.unlink(target)),
                     ("rename extract file", lambda: os.rename(target, "/data/y"))):
        ok, detail = _try(fn)
        record(name, ok, detail)

    ok, detail = _try(lambda: os.mknod("/tmp/mem", stat.S_IFCHR | 0o600, os.makedev(1, 1)))
    record("mknod /dev/mem", ok, detail)
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
    record("mount tmpfs", rc == 0, os.strerror(ctypes.get_errno()))
    rc = libc.mount(b"/", b"/tmp", None, 4096 | 16384, None)  # MS_BIND | MS_REC
    record("bind-mount root", rc == 0, os.strerror(ctypes.get_errno()))
    read_end, write_end = os.pipe()
    child = os.fork()  # a single-threaded child: unshare(CLONE_NEWUSER) refuses threads
    if child == 0:
        rc = libc.unshare(0x10000000)  # CLONE_NEWUSER
        os.write(write_end, b"0" if rc == 0 else str(ctypes.get_errno()).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    errno_text = os.read(read_end, 16).decode()
    os.close(read_end)
    record("unshare user namespace", errno_text == "0",
           "created" if errno_text == "0" else os.strerror(int(errno_text or 0)))
    ok, detail = _try(lambda: os.setuid(0))
    record("setuid 0", ok, detail)
    ok, detail = _try(lambda: os.listdir("/sys/fs/cgroup"))
    record("cgroup filesystem visible", ok, detail)

    key_path = t["forbidden"]["key store"]
    for name, target in (("symlink to host key", key_path),
                         ("symlink to /proc/1/root key", "/proc/1/root" + key_path)):
        link = "/work/leak-" + name.replace(" ", "-").replace("/", "_")
        try:
            os.symlink(target, link)
        except FileExistsError:
            pass
        ok, detail = _try(lambda link=link: open(link, "rb").read().decode("latin-1"))
        record(name, ok and canary in detail, detail)

    import sys
    site = next(p for p in sys.path if p.endswith("site-packages"))
    for name, path in (("write venv .pth", site + "/zz-evil.pth"),
                       ("write enclave code", "/opt/enclave/lib/output_control/evil.py"),
                       ("write kernelspec",
                        "/opt/enclave/share/jupyter/kernels/enclave-python/kernel.json"),
                       ("write /etc/passwd", "/etc/passwd"), ("write /usr", "/usr/evil")):
        ok, detail = _try(lambda path=path: open(path, "a").write("import os\n"))
        record(name, ok, detail)
    return out
'''


@dataclass
class HostListeners:
    """TCP, UDP and abstract Unix sockets listening on the host while a sandbox runs."""

    banner: bytes
    tcp: socket.socket = field(init=False)
    udp: socket.socket = field(init=False)
    unix: socket.socket = field(init=False)
    abstract: str = field(default_factory=lambda: "enclave-escape-" + secrets.token_hex(6))
    tcp_accepted: list[str] = field(default_factory=list)
    unix_accepted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract)
        self.unix.listen()
        for server, seen in ((self.tcp, self.tcp_accepted), (self.unix, self.unix_accepted)):
            threading.Thread(target=self._serve, args=(server, seen), daemon=True).start()

    def _serve(self, server: socket.socket, seen: list[str]) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, peer = server.accept()
                seen.append(str(peer))
                with conn:
                    conn.sendall(self.banner)

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def udp_received(self) -> list[bytes]:
        got = []
        with contextlib.suppress(BlockingIOError):
            while True:
                got.append(self.udp.recv(2048))
        return got

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.unix):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextlib.contextmanager
def listeners(canary: str) -> Iterator[HostListeners]:
    """Listeners that answer every connection with the canary."""
    found = HostListeners(banner=f"{canary}-banner".encode())
    try:
        yield found
    finally:
        found.close()


def targets(canary: str, host: HostListeners, forbidden: dict[str, str],
            in_kernel: bool) -> dict[str, object]:
    """What the attack code aims at."""
    return {"canary_reversed": canary[::-1], "tcp_port": host.tcp_port,
            "udp_port": host.udp_port, "abstract": host.abstract, "forbidden": forbidden,
            "host_pid": os.getpid(), "in_kernel": in_kernel}
