"""Workspaces: login-to-ready time and memory per idle workspace, sandboxed vs unsandboxed.

Starts a real hub (node proxy, demo login) twice in the same process: first with the enclave's
:class:`~enclave.hub.spawner.SandboxSpawner` (bubblewrap, nested kernel sandbox, download
controls), then, as the baseline, with JupyterHub's ``SimpleLocalProcessSpawner`` (the same
JupyterLab as a plain local process, no sandbox). For each it measures:

- login-to-ready: from posting the login form to JupyterLab's page loaded through the proxy
  (OAuth round trip included), one user at a time (``--repeats``) and ``--users`` at once;
- memory of one idle workspace with one kernel that ran a cell: the sum of the proportional
  set size (PSS, ``/proc/<pid>/smaps_rollup``) of its processes.

It prints median and p95 and the ratio sandboxed / baseline. Goals (issue 6): median <= 2.5 s
for one user, p95 <= 15 s for 20 users at once, <= 200 MiB per user with one kernel. Needs root,
bubblewrap and the node proxy: ``sudo .venv/bin/python benchmarks/bench_workspace.py``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enclave import demo  # noqa: E402
from enclave.core import people, policy  # noqa: E402
from enclave.core.context import Enclave, initialise  # noqa: E402
from enclave.core.policy import Role  # noqa: E402
from enclave.core.settings import Settings, load_settings  # noqa: E402
from enclave.hub.sockets import socket_base  # noqa: E402
from enclave.hub.spawner import run_area  # noqa: E402
from enclave.sandbox import run as sandbox_run  # noqa: E402
from enclave.workspaces.demo_project import create_active_project  # noqa: E402
from tests.hub.workspace_hub import HubClient, RunningHub, start_hub  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105 - throwaway accounts of a temporary enclave
MiB = 1024 * 1024
BASELINE_ARGS = ("--JupyterHub.spawner_class=jupyterhub.spawner.SimpleLocalProcessSpawner",
                 "--SimpleLocalProcessSpawner.args=['--allow-root']",
                 f"--SimpleLocalProcessSpawner.cmd=['{Path(sys.executable).parent}/"
                 "jupyterhub-singleuser']")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def prepare(home: Path, users: int) -> tuple[Settings, list[str], str]:
    """An enclave with ``users`` accredited researchers, members of one active project."""
    settings = load_settings(env={}, home=home)
    initialise(settings, env={})
    enclave = Enclave.open(settings, env={})
    names = [f"bench{i:02d}" for i in range(users)]
    try:
        with enclave.db.transaction() as session:
            for name in names:
                people.create_user(session, policy.SYSTEM, name, name, roles=[Role.RESEARCHER],
                                   password=PASSWORD)
                people.record_accreditation(session, policy.SYSTEM, name,
                                            date.today() - timedelta(days=10))
            people.create_user(session, policy.SYSTEM, "claire", "Claire",
                               roles=[Role.DEPP_STAFF])
        demo.generate_demo_data(enclave, pupils=300, traces_per_pupil=1.0)
        project = create_active_project(enclave, names[0], names[1:], "claire")
    finally:
        enclave.close()
    return settings, names, project


def login_to_ready(url: str, username: str, project: str) -> tuple[float, HubClient]:
    """Seconds from the login form to JupyterLab loaded, and the logged-in client."""
    started = time.monotonic()
    client = HubClient(url, username, PASSWORD)
    client.start(project, timeout=300)
    return time.monotonic() - started, client


def _pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def sandbox_pids(settings: Settings, username: str, project: str) -> list[int]:
    """Processes of the sandboxed workspace: those of its cgroup."""
    area = run_area(socket_base(settings.run_dir), username, project)
    pids: set[int] = set()
    for procs in glob.glob(f"/sys/fs/cgroup/*/enclave/ws-{area.name}-*/cgroup.procs"):
        pids.update(int(p) for p in Path(procs).read_text().split())
    return sorted(pids)


def baseline_pids(settings: Settings, username: str, project: str) -> list[int]:
    """Processes of the unsandboxed workspace: those whose environment names its server."""
    wanted = {f"JUPYTERHUB_USER={username}".encode(),
              f"JUPYTERHUB_SERVER_NAME={project}".encode()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = set(Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            found.append(int(entry))
    return found


def measure(label: str, hub: RunningHub, settings: Settings, names: list[str], project: str,
            repeats: int, pids_of: Callable[[Settings, str, str], list[int]],
            ) -> dict[str, float]:
    """Login-to-ready (1 user, then all at once) and PSS of one idle workspace with a kernel."""
    single = []
    for _ in range(repeats):
        seconds, client = login_to_ready(hub.url, names[0], project)
        single.append(seconds)
        client.stop(project)
        client.close()
    seconds, client = login_to_ready(hub.url, names[0], project)
    kernel = client.start_kernel(project)
    client.execute(project, kernel, "import pandas\nprint(pandas.__version__)")
    time.sleep(2)
    pss = _pss(pids_of(settings, names[0], project))
    client.stop(project)
    client.close()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(lambda n: login_to_ready(hub.url, n, project), names))
    together = [seconds for seconds, _ in results]
    for _seconds, each in results:
        each.stop(project, timeout=120)
        each.close()
    figures = {"single_median": statistics.median(single),
               "single_p95": _percentile(single, 0.95),
               "many_median": statistics.median(together),
               "many_p95": _percentile(together, 0.95),
               "pss_mib": pss / MiB}
    print(f"{label:>11}: 1 user median {figures['single_median']:.2f} s, p95 "
          f"{figures['single_p95']:.2f} s | {len(names)} users median "
          f"{figures['many_median']:.2f} s, p95 {figures['many_p95']:.2f} s | idle workspace "
          f"with one kernel {figures['pss_mib']:.0f} MiB PSS", flush=True)
    return figures


def main() -> int:
    """Run both hubs, print the figures and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    reason = sandbox_run.unavailable_reason()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if not (ROOT / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        print("cannot run: the node proxy is not installed (npm ci)", file=sys.stderr)
        return 2
    results = {}
    tmp = tempfile.mkdtemp(prefix="bench-ws-")
    for label, extra, pids_of in (("sandboxed", (), sandbox_pids),
                                  ("baseline", BASELINE_ARGS, baseline_pids)):
        settings, names, project = prepare(Path(tmp) / label / "var", args.users)
        hub = start_hub(settings, extra_args=extra)
        try:
            results[label] = measure(label, hub, settings, names, project, args.repeats,
                                     pids_of)
        except Exception:
            print(f"failed; the hub's log is kept in {hub.log}", file=sys.stderr)
            raise
        finally:
            hub.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    sandboxed, baseline = results["sandboxed"], results["baseline"]
    print("ratio sandboxed / baseline: " + ", ".join(
        f"{key} x{sandboxed[key] / baseline[key]:.2f}" for key in sandboxed if baseline[key]))
    print(f"goals: 1 user median <= 2.5 s ({sandboxed['single_median']:.2f}), "
          f"{args.users} users p95 <= 15 s ({sandboxed['many_p95']:.2f}), <= 200 MiB per "
          f"workspace with one kernel ({sandboxed['pss_mib']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
