"""Escape and isolation: from inside a real sandboxed process and a real sandboxed kernel,
every attack must fail to do harm.

The same attack code (:mod:`tests.sandbox.probes`) runs once in a plain sandboxed Python
process and once in an IPython kernel started by papermill inside the workspace sandbox (the
kernel itself in the nested kernel sandbox); each attack is then its own test for both.
Needs root and bubblewrap (skips otherwise; ``ENCLAVE_REQUIRE_SANDBOX=1`` makes that fail).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from enclave.sandbox import run as sandbox_run
from enclave.sandbox.bwrap import MiB
from enclave.sandbox.exceptions import SandboxError
from tests.sandbox import probes
from tests.sandbox.conftest import Layout, host_secrets, run_python

pytestmark = pytest.mark.usefixtures("sandbox_ready")

ATTACKS = [
    "tcp_host_port", "tcp_outside", "tcp_outside_v6", "udp_outside", "dns",
    "unix_abstract_socket", "read raw zone", "read key store", "read database",
    "read other project's extract", "read other user's work", "canary anywhere in the sandbox",
    "/proc/1/environ", "/proc/<host pid>/environ", "/proc/self/environ", "host processes visible",
    "parent papermill visible from kernel", "signal host process", "secret environment",
    "capabilities", "no_new_privs unset", "runs as root", "write new file in /data",
    "overwrite extract file", "chmod extract file", "delete extract file",
    "rename extract file", "mknod /dev/mem", "mount tmpfs", "bind-mount root",
    "unshare user namespace", "setuid 0", "cgroup filesystem visible", "symlink to host key",
    "symlink to /proc/1/root key", "write venv .pth", "write enclave code",
    "write kernelspec", "write /etc/passwd", "write /usr",
]

#: Start-up files a kernel plants; each, if ever executed, leaves /work/pwned-<tag>.
PLANTS = {
    "home-jupyter-config": "~/.jupyter/jupyter_config.py",
    "home-server-config": "~/.jupyter/jupyter_server_config.py",
    "home-nbclient-config": "~/.jupyter/jupyter_nbconvert_config.py",
    "home-ipython-startup": "~/.ipython/profile_default/startup/00-evil.py",
    "home-ipython-config": "~/.ipython/profile_default/ipython_kernel_config.py",
    "work-jupyter-config": "/work/.jupyter/jupyter_config.py",
    "work-ipython-startup": "/work/.ipython/profile_default/startup/00-evil.py",
    "work-sitecustomize": "/work/sitecustomize.py",
    "work-usercustomize": "/work/usercustomize.py",
    "work-pth": "/work/zz-evil.pth",
    "work-shadow-ipykernel": "/work/ipykernel_launcher.py",
    "work-shadow-papermill": "/work/papermill.py",
    "work-shadow-enclave": "/work/enclave/__init__.py",
    "work-editable-path": "/work/main/enclave/__init__.py",
    "tmp-sitecustomize": "/tmp/sitecustomize.py",
    "home-kernelspec": "~/.local/share/jupyter/kernels/enclave-python/kernel.json",
    "work-kernelspec": "/work/.local/share/jupyter/kernels/enclave-python/kernel.json",
    "runtime-kernelspec": "/run/jupyter/kernels/enclave-python/kernel.json",
}
PLANT_CODE = textwrap.dedent('''
    import json, os
    for tag, path in PLANTS.items():
        path = os.path.expanduser(path)
        payload = f"open('/work/pwned-{tag}', 'w').write('x')\\n"
        if path.endswith(".pth"):
            payload = "import os; " + payload
        if path.endswith(".json"):
            payload = json.dumps({"argv": ["python", "-c", payload], "language": "python",
                                  "display_name": "evil"})
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(payload)
            planted[tag] = "planted"
        except OSError as exc:
            planted[tag] = f"refused: {exc}"
''')


def _forbidden(layout: Layout) -> dict[str, str]:
    return {label: str(path) for label, path in layout.forbidden.items()}


@pytest.fixture(scope="module")
def host(layout: Layout) -> Iterator[probes.HostListeners]:
    with probes.listeners(layout.canary) as found:
        yield found


@pytest.fixture(scope="module")
def process_results(layout: Layout, host: probes.HostListeners) -> dict[str, Any]:
    """The attacks, run once in a plain sandboxed Python process."""
    target = probes.targets(layout.canary, host, _forbidden(layout), in_kernel=False)
    with host_secrets(layout.canary):
        return run_python(layout.spec(), probes.ATTACKS
                          + f"\nprint(json.dumps(attack_all(json.loads({json.dumps(target)!r}))))")


def _notebook(path: Path, *cells: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def kernel_run(layout: Layout, host: probes.HostListeners,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The attacks and the plants, run in a kernel under papermill in the sandbox."""
    target = probes.targets(layout.canary, host, _forbidden(layout), in_kernel=True)
    source = _notebook(
        tmp_path_factory.mktemp("nb") / "attack.ipynb",
        probes.ATTACKS,
        f"results = attack_all(json.loads({json.dumps(target)!r}))",
        f"PLANTS = {json.dumps(PLANTS)}\nplanted = {{}}\n" + PLANT_CODE,
        "import json\nopen('/work/kernel-results.json', 'w').write("
        "json.dumps({'attacks': results, 'planted': planted}))")
    with host_secrets(layout.canary):
        result = sandbox_run.run_papermill(layout.spec(allow_nested_userns=True), source,
                                           "attack-executed.ipynb", timeout=120)
    assert result.returncode == 0, result.log
    data = json.loads((layout.work_alice / "kernel-results.json").read_text())
    return {"attacks": data["attacks"], "planted": data["planted"], "result": result}


@pytest.fixture(params=["process", "kernel"])
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "process":
        return request.getfixturevalue("process_results")
    return request.getfixturevalue("kernel_run")["attacks"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_does_no_harm(results: dict[str, Any], attack: str) -> None:
    assert attack in results, f"the attack {attack!r} did not run"
    outcome = results[attack]
    assert outcome["harm"] is False, f"{attack}: {outcome['detail']}"


def test_the_kernel_ran_in_the_nested_sandbox(process_results: dict[str, Any],
                                              kernel_run: dict[str, Any],
                                              layout: Layout) -> None:
    assert process_results["where"]["hostname"] == "enclave"
    assert kernel_run["attacks"]["where"]["hostname"] == "enclave-kernel"
    for where in (process_results["where"], kernel_run["attacks"]["where"]):
        assert where["uid"] == layout.alice.uid
    # --disable-userns in the kernel sandbox: no user namespace at all, not merely EPERM
    assert "No space left" in kernel_run["attacks"]["unshare user namespace"]["detail"]


def test_nothing_reached_the_host_listeners(results: dict[str, Any],
                                            host: probes.HostListeners) -> None:
    assert "udp_host_port_sent" in results
    assert host.tcp_accepted == []
    assert host.unix_accepted == []
    assert host.udp_received() == []


def test_outside_traffic_fails_at_once(results: dict[str, Any]) -> None:
    for attack in ("tcp_outside", "udp_outside", "tcp_outside_v6"):
        assert "unreachable" in results[attack]["detail"].lower(), results[attack]


def test_the_host_still_reaches_its_own_listener(host: probes.HostListeners) -> None:
    """Control: the listener works, so the refusal above is the sandbox's doing."""
    import socket

    with socket.create_connection(("127.0.0.1", host.tcp_port), timeout=2) as conn:
        assert conn.recv(100).endswith(b"-banner")


def test_kernel_plants_land_only_in_tmpfs_or_work_and_never_run(
        layout: Layout, kernel_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Plant start-up files from a kernel, then run papermill again in the same /work."""
    planted = kernel_run["planted"]
    assert planted["home-jupyter-config"] == "planted"  # HOME is writable: its own tmpfs
    check = _notebook(
        tmp_path_factory.mktemp("nb") / "check.ipynb",
        "import json, os\nhome = {t: os.path.exists(os.path.expanduser(p)) for t, p in "
        f"{json.dumps(PLANTS)}.items() if p.startswith('~')}}\n"
        "open('/work/check-results.json', 'w').write(json.dumps(home))")
    second = sandbox_run.run_papermill(layout.spec(allow_nested_userns=True), check,
                                       "check-executed.ipynb", timeout=120)
    assert second.returncode == 0, second.log
    home_after = json.loads((layout.work_alice / "check-results.json").read_text())
    assert home_after and not any(home_after.values()), home_after  # a fresh tmpfs HOME
    pwned = sorted(p.name for p in layout.work_alice.glob("pwned-*"))
    assert pwned == [], f"planted start-up files ran: {pwned}"
    assert not list(layout.outputs_a.glob("pwned-*"))
    for tag, path in PLANTS.items():  # what landed on the host is in the person's /work only
        if path.startswith("/work/") and planted[tag] == "planted":
            assert (layout.work_alice / path.removeprefix("/work/")).exists()


def test_host_copy_out_refuses_a_symlink_planted_in_work(layout: Layout,
                                                         tmp_path: Path) -> None:
    key = layout.forbidden["key store"]
    run_python(layout.spec(), f"""
        import os, json
        if not os.path.lexists('/work/evil.ipynb'):
            os.symlink({str(key)!r}, '/work/evil.ipynb')
        print(json.dumps({{"ok": True}}))
    """)
    assert (layout.work_alice / "evil.ipynb").is_symlink()
    with pytest.raises(SandboxError, match="no plain file"):
        sandbox_run.copy_out(layout.work_alice / "evil.ipynb", tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()


def test_fork_bomb_stays_within_the_process_limit(layout: Layout) -> None:
    spec = layout.spec(nproc=48)
    started = time.monotonic()
    result = sandbox_run.run_in_sandbox(spec, ["python", "-c", textwrap.dedent("""
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """)], timeout=4)
    assert result.timed_out and time.monotonic() - started < 15
    assert result.pids_peak is None or result.pids_peak <= spec.nproc
    assert any("nproc" in line or "pids" in line for line in result.enforced)
    left = subprocess.run(["pgrep", "-u", str(spec.uid)], capture_output=True, text=True,
                          check=False).stdout.split()
    assert all(_is_zombie(pid) for pid in left), f"bomb survivors: {left}"
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def _is_zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def test_memory_hog_is_killed_within_the_memory_limit(layout: Layout) -> None:
    spec = layout.spec(memory_bytes=192 * MiB)
    result = sandbox_run.run_in_sandbox(spec, ["python", "-c", textwrap.dedent("""
        chunks = []
        for _ in range(128):
            chunks.append(bytearray(16 * 1024 * 1024))  # 2 GiB in all, touched
        print("survived")
    """)], timeout=30)
    assert not result.timed_out and result.seconds < 30
    assert "survived" not in result.log
    assert result.returncode != 0
    if result.memory_peak is not None:  # the cgroup enforced it: the kernel OOM-killed
        assert result.memory_peak <= spec.memory_bytes
        assert result.oom_kills >= 1
    else:  # RLIMIT_AS fallback
        assert "MemoryError" in result.log


def test_memory_hog_in_a_kernel_kills_the_kernel_only(layout: Layout,
                                                      tmp_path: Path) -> None:
    spec = layout.spec(memory_bytes=384 * MiB, allow_nested_userns=True)
    notebook = _notebook(tmp_path / "hog.ipynb",
                         "chunks = [bytearray(16 * 1024 * 1024) for _ in range(128)]")
    result = sandbox_run.run_papermill(spec, notebook, "hog-executed.ipynb", timeout=90)
    assert result.returncode != 0 and not result.timed_out
    assert result.memory_peak is None or result.memory_peak <= spec.memory_bytes
    assert "Kernel died" in result.log or "DeadKernel" in result.log, result.log[-2000:]
    assert (layout.work_alice / "hog-executed.ipynb").exists()  # papermill itself survived


def test_cpu_time_limit_kills_a_spinning_process(layout: Layout) -> None:
    result = sandbox_run.run_in_sandbox(layout.spec(cpu_seconds=1), [
        "python", "-c", "while True: pass"], timeout=20)
    assert not result.timed_out and result.returncode != 0
    assert result.seconds < 15


def test_a_server_secret_reaches_the_server_only_never_a_kernel_or_argv(
        layout: Layout) -> None:
    token = layout.canary + "-hub-token"
    result = sandbox_run.run_in_sandbox(
        layout.spec(allow_nested_userns=True), ["python", "-c", textwrap.dedent("""
            import json, os, stat, subprocess
            from enclave.sandbox.bwrap import SECRETS, kernel_argv
            path = SECRETS + "/hub-token"
            info = os.stat(path)
            seen = {"server_reads": open(path).read(), "mode": oct(stat.S_IMODE(info.st_mode)),
                    "fds": sorted(os.listdir("/proc/self/fd")),
                    "argv_of_pid1": open("/proc/1/cmdline", "rb").read().decode(errors="replace"),
                    "environ": " ".join(f"{k}={v}" for k, v in os.environ.items())}
            open("/run/jupyter/kernel-x.json", "w").write("{}")
            kernel = subprocess.run(
                kernel_argv("/run/jupyter/kernel-x.json", ["cat", path], os.environ),
                capture_output=True, text=True)
            seen["kernel"] = [kernel.returncode, kernel.stdout, kernel.stderr]
            print(json.dumps(seen))
        """)], timeout=30, secret_files={"hub-token": token.encode()})
    seen = json.loads(result.log.strip().splitlines()[-1])
    assert seen["server_reads"] == token and seen["mode"] == "0o400"
    assert seen["fds"] == ["0", "1", "2", "3"]  # 3: the listing itself; no leaked descriptor
    assert token not in seen["argv_of_pid1"] and token not in seen["environ"]
    returncode, stdout, stderr = seen["kernel"]
    assert returncode != 0 and token not in stdout and "No such file" in stderr


def test_node_is_not_runnable_inside_and_the_bound_code_has_its_bytecode(
        layout: Layout) -> None:
    found = run_python(layout.spec(), """
        import importlib.util, json, os, shutil, subprocess
        try:
            subprocess.run(["/usr/bin/node", "-e", "1"], check=True, capture_output=True)
            node = "ran"
        except OSError as exc:
            node = type(exc).__name__
        import enclave.sandbox.server_guard as guard, enclave.sandbox.kernel as kernel
        cached = [os.path.exists(importlib.util.cache_from_source(m.__file__))
                  for m in (guard, kernel)]
        print(json.dumps({"node": node, "which": shutil.which("node"), "cached": cached}))
    """)
    assert found["node"] != "ran" and found["which"] is None, found
    assert found["cached"] == [True, True], found
