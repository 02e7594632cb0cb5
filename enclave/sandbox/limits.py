"""Memory, process and CPU limits of one sandbox: a cgroup when writable, rlimits always.

What is enforced, and how (see :meth:`Cgroup.describe`):

- **memory**: the cgroup memory controller (v1 ``memory.limit_in_bytes`` plus
  ``memory.memsw.limit_in_bytes``, or v2 ``memory.max`` with ``memory.swap.max = 0``) bounds
  the whole sandbox, tmpfs files included; the kernel OOM-kills inside the sandbox only. Without
  a writable memory controller the fallback is ``RLIMIT_AS`` per process, which is weaker (a
  sandbox may hold several processes each up to the limit) and is reported as such.
- **processes**: the cgroup ``pids.max`` bounds the sandbox's tasks (threads count), and
  ``RLIMIT_NPROC`` bounds the account's tasks on the whole machine.
- **CPU**: ``RLIMIT_CPU`` kills any single process after ``cpu_seconds`` of CPU time, and the
  cgroup CPU quota (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``) caps the sandbox at ``cpu_cores``.
- **CPU weight**: the ``enclave`` parent cgroup's weight follows the number of sandboxes in it
  (:func:`balance_parent_weight`), so that under contention twenty workspaces weigh as twenty
  processes, as unsandboxed servers would, and not together as one process against the hub
  and everything else on the machine.
- **core dumps** are disabled (``RLIMIT_CORE = 0``): a core file would hold extract data.

Disk use of ``/work`` and ``/outputs`` is not limited here: this machine's filesystem has
no project quotas, so :mod:`enclave.sandbox.disk` measures it (the hub's poll stops a
project over its limit; the contents API refuses saves that would go over).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from enclave.sandbox.exceptions import SandboxError

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The folder, in every hierarchy, that holds one cgroup per running sandbox.
CGROUP_PARENT = "enclave"
CFS_PERIOD_US = 100_000
#: CPU weight of one sandbox, as of one ordinary process (v1 ``cpu.shares``, v2 ``cpu.weight``).
SHARES_V1, WEIGHT_V2 = 1024, 100


def cgroup_version(root: Path = CGROUP_ROOT) -> str | None:
    """``"v1"`` (a tmpfs of per-controller hierarchies), ``"v2"`` (unified) or None."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "memory" / "cgroup.procs").exists() or (root / "pids" / "cgroup.procs").exists():
        return "v1"
    return None


@dataclass
class Cgroup:
    """The cgroup directories of one sandbox; the sandbox joins them before dropping root."""

    name: str
    version: str
    dirs: dict[str, Path] = field(default_factory=dict)
    enforced: dict[str, str] = field(default_factory=dict)

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the sandbox's first process writes its pid into."""
        return [str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    @property
    def limits_memory(self) -> bool:
        """Whether the memory limit is enforced by this cgroup (else RLIMIT_AS is used)."""
        return "memory" in self.enforced

    def memory_peak(self) -> int | None:
        """Highest memory use seen, in bytes, if the controller reports it."""
        path = self.dirs.get("memory")
        if path is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        with contextlib.suppress(OSError, ValueError):
            return int((path / name).read_text())
        return None

    def pids_peak(self) -> int | None:
        """Most tasks the sandbox held at once, if the pids controller reports it."""
        path = self.dirs.get("pids", self.dirs.get("unified"))
        if path is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((path / "pids.peak").read_text())
        return None

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding the memory limit."""
        path = self.dirs.get("memory")
        if path is None:
            return 0
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        with contextlib.suppress(OSError):
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def pids(self) -> list[int]:
        """Processes still in the sandbox's cgroup."""
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in Path(procs).read_text().split())
        return sorted(found)

    def close(self, timeout: float = 5.0) -> None:
        """Kill what is left of the sandbox (only processes in its cgroup) and remove it."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not left:
                break
            if time.monotonic() > deadline:
                raise SandboxError(f"sandbox cgroup {self.name} still holds processes {left}")
            time.sleep(0.02)
        for path in dict.fromkeys(self.dirs.values()):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last task is being reaped
                    time.sleep(0.02)
        cpu_dir = self.dirs.get("cpu", self.dirs.get("unified"))
        if cpu_dir is not None:
            balance_parent_weight(cpu_dir.parent, self.version)

    def describe(self) -> list[str]:
        """One line per limit, saying how it is enforced."""
        return [f"{key}: {how}" for key, how in self.enforced.items()]


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def balance_parent_weight(parent: Path, version: str) -> None:
    """Give the ``enclave`` parent cgroup the CPU weight of one process per sandbox in it.

    Without this, every sandbox together shares the weight of a single process (the parent's
    default), so under load from the rest of the machine workspaces starve each other. Each
    sandbox keeps its own CPU quota; this only restores a fair share. Best effort.
    """
    try:
        count = sum(1 for child in parent.iterdir() if child.is_dir())
        if version == "v1":
            _write(parent / "cpu.shares", str(SHARES_V1 * max(1, count)))
        else:
            _write(parent / "cpu.weight", str(min(10000, WEIGHT_V2 * max(1, count))))
    except OSError:
        return


def create_cgroup(name: str, memory_bytes: int, nproc: int, cpu_cores: float | None,
                  root: Path = CGROUP_ROOT) -> Cgroup | None:
    """Create the sandbox's cgroup with its limits, or None when no controller is writable."""
    version = cgroup_version(root)
    if version is None or os.geteuid() != 0:
        return None
    group = Cgroup(name, version)
    try:
        if version == "v1":
            _create_v1(group, root, memory_bytes, nproc, cpu_cores)
        else:
            _create_v2(group, root, memory_bytes, nproc, cpu_cores)
    except BaseException:
        group.close()
        raise
    if not group.dirs:
        return None
    return group


def _v1_dir(root: Path, controller: str, name: str) -> Path | None:
    base = root / controller
    if not (base / "cgroup.procs").exists():
        return None
    try:
        (base / CGROUP_PARENT).mkdir(mode=0o755, exist_ok=True)
        path = base / CGROUP_PARENT / name
        path.mkdir(mode=0o755)
    except OSError:
        return None
    return path


def _create_v1(group: Cgroup, root: Path, memory_bytes: int, nproc: int,
               cpu_cores: float | None) -> None:
    memory = _v1_dir(root, "memory", group.name)
    if memory is not None:
        group.dirs["memory"] = memory
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            _write(swap, str(memory_bytes))
        group.enforced["memory"] = f"cgroup v1 memory.limit_in_bytes = {memory_bytes}"
    pids = _v1_dir(root, "pids", group.name)
    if pids is not None:
        group.dirs["pids"] = pids
        _write(pids / "pids.max", str(nproc))
        group.enforced["pids"] = f"cgroup v1 pids.max = {nproc}"
    if cpu_cores is not None:
        cpu = _v1_dir(root, "cpu", group.name)
        if cpu is not None:
            group.dirs["cpu"] = cpu
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(max(1000, int(cpu_cores * CFS_PERIOD_US))))
            group.enforced["cpu"] = f"cgroup v1 cpu.cfs_quota_us = {cpu_cores} cores"
            balance_parent_weight(cpu.parent, "v1")


def _create_v2(group: Cgroup, root: Path, memory_bytes: int, nproc: int,
               cpu_cores: float | None) -> None:
    """cgroup v2: needs the controllers delegated to ``/sys/fs/cgroup/enclave`` (as root)."""
    wanted = ["memory", "pids"] + (["cpu"] if cpu_cores is not None else [])
    available = set((root / "cgroup.controllers").read_text().split())
    wanted = [c for c in wanted if c in available]
    parent = root / CGROUP_PARENT
    try:
        parent.mkdir(mode=0o755, exist_ok=True)
        for level in (root, parent):
            with contextlib.suppress(OSError):
                _write(level / "cgroup.subtree_control", " ".join("+" + c for c in wanted))
        path = parent / group.name
        path.mkdir(mode=0o755)
    except OSError:
        return
    enabled = set((path / "cgroup.controllers").read_text().split())
    group.dirs["unified"] = path
    if "pids" in enabled:
        group.dirs["pids"] = path
    if "memory" in enabled:
        _write(path / "memory.max", str(memory_bytes))
        with contextlib.suppress(OSError):
            _write(path / "memory.swap.max", "0")
        group.dirs["memory"] = path
        group.enforced["memory"] = f"cgroup v2 memory.max = {memory_bytes}"
    if "pids" in enabled:
        _write(path / "pids.max", str(nproc))
        group.enforced["pids"] = f"cgroup v2 pids.max = {nproc}"
    if cpu_cores is not None and "cpu" in enabled:
        _write(path / "cpu.max", f"{max(1000, int(cpu_cores * CFS_PERIOD_US))} {CFS_PERIOD_US}")
        group.enforced["cpu"] = f"cgroup v2 cpu.max = {cpu_cores} cores"
        balance_parent_weight(parent, "v2")


def prlimit_options(nproc: int, cpu_seconds: int | None,
                    address_space: int | None) -> list[str]:
    """``prlimit`` options: processes, CPU seconds, no core dumps, optional address space."""
    options = [f"--nproc={nproc}:{nproc}", "--core=0:0"]
    if cpu_seconds is not None:
        options.append(f"--cpu={cpu_seconds}:{cpu_seconds + 5}")
    if address_space is not None:
        options.append(f"--as={address_space}:{address_space}")
    return options


def existing_cgroup(name: str, root: Path = CGROUP_ROOT) -> Cgroup | None:
    """The cgroup ``name`` made earlier by :func:`create_cgroup` (e.g. before a hub restart)."""
    version = cgroup_version(root)
    if version is None or not name or "/" in name or name.startswith("."):
        return None
    group = Cgroup(name, version)
    if version == "v1":
        for controller in ("memory", "pids", "cpu"):
            path = root / controller / CGROUP_PARENT / name
            if path.is_dir():
                group.dirs[controller] = path
    else:
        path = root / CGROUP_PARENT / name
        if path.is_dir():
            group.dirs.update({"unified": path, "pids": path, "memory": path})
    return group if group.dirs else None
