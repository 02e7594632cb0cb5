"""The sandbox's hardening, asserted once on the argv that starts it (no root needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from enclave.sandbox import accounts, bwrap, limits
from enclave.sandbox import run as sandbox_run
from enclave.sandbox.bwrap import MiB, SandboxSpec
from enclave.sandbox.exceptions import AccountError, SandboxUnavailable
from enclave.workspaces import notebook_runs


@pytest.fixture
def spec(tmp_path: Path) -> SandboxSpec:
    for name in ("extract", "work", "outputs"):
        (tmp_path / name).mkdir()
    return SandboxSpec("enc-alice", 61000, 61000, (("encp-prj-1", 62000),),
                       tmp_path / "extract", tmp_path / "work", tmp_path / "outputs",
                       memory_bytes=512 * MiB, nproc=64, cpu_seconds=60,
                       allow_nested_userns=False)


def _split(argv: list[str]) -> dict[str, list[str]]:
    """The argv's stages: root stage, prlimit, setpriv, bwrap options, command."""
    prlimit = argv.index(bwrap.PRLIMIT)
    setpriv = argv.index(bwrap.SETPRIV)
    start = argv.index(bwrap.BWRAP)
    end = len(argv) - 1 - argv[::-1].index("--")
    return {"stage": argv[:prlimit], "prlimit": argv[prlimit:setpriv],
            "setpriv": argv[setpriv:start], "bwrap": argv[start:end],
            "command": argv[end + 1:]}


def _pairs(options: list[str], flag: str, width: int = 2) -> list[tuple[str, ...]]:
    return [tuple(options[i + 1:i + 1 + width]) for i, o in enumerate(options) if o == flag]


def test_the_sandbox_argv_carries_every_hardening_option(spec: SandboxSpec) -> None:
    parts = _split(bwrap.sandbox_argv(spec, ["python", "-c", "pass"],
                                      cgroup_procs=["/sys/fs/cgroup/memory/x/cgroup.procs"],
                                      memory_in_cgroup=True))
    stage = parts["stage"]
    assert stage[:5] == [bwrap.UNSHARE, "--mount", "--propagation", "private", "--"]
    assert stage[5:8] == [bwrap.SHELL, "-c", bwrap.STAGE_SCRIPT]  # constant script
    assert stage[10:12] == ["cg", "/sys/fs/cgroup/memory/x/cgroup.procs"]
    assert "--nproc=64:64" in parts["prlimit"] and "--core=0:0" in parts["prlimit"]
    assert "--cpu=60:65" in parts["prlimit"]
    assert not any(o.startswith("--as=") for o in parts["prlimit"])  # the cgroup has memory
    setpriv = parts["setpriv"]
    for option in ("--reuid=61000", "--regid=61000", "--groups=62000", "--inh-caps=-all",
                   "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"):
        assert option in setpriv
    options = parts["bwrap"]
    for flag in ("--unshare-all", "--unshare-user", "--unshare-net", "--new-session",
                 "--die-with-parent", "--disable-userns", "--clearenv"):
        assert flag in options, flag
    assert ("ALL",) in _pairs(options, "--cap-drop", 1)
    assert ("61000",) in _pairs(options, "--uid", 1)
    binds = _pairs(options, "--bind") + _pairs(options, "--ro-bind")
    assert (f"{bwrap.STAGE_DIR}/data", "/data") in _pairs(options, "--ro-bind")
    assert (f"{bwrap.STAGE_DIR}/work", "/work") in _pairs(options, "--bind")
    assert (f"{bwrap.STAGE_DIR}/outputs", "/outputs") in _pairs(options, "--bind")
    assert {dest for _src, dest in _pairs(options, "--bind")} == {"/work", "/outputs"}
    assert all(not src.startswith(str(spec.work_dir.parent)) for src, _d in binds)
    assert ("/",) in _pairs(options, "--remount-ro", 1)
    assert {"/tmp", spec.home, "/run"} <= {d for (d,) in _pairs(options, "--tmpfs", 1)}
    assert "--share-net" not in options and "--dev-bind" not in options
    assert parts["command"] == ["python", "-c", "pass"]


def test_nested_user_namespaces_only_when_asked(spec: SandboxSpec) -> None:
    from dataclasses import replace

    options = _split(bwrap.sandbox_argv(replace(spec, allow_nested_userns=True),
                                        ["true"]))["bwrap"]
    assert "--disable-userns" not in options and "--unshare-user" in options


def test_without_a_memory_cgroup_the_address_space_is_limited(spec: SandboxSpec) -> None:
    parts = _split(bwrap.sandbox_argv(spec, ["true"], memory_in_cgroup=False))
    assert f"--as={512 * MiB}:{512 * MiB}" in parts["prlimit"]


def test_the_sandbox_environment_is_explicit_and_holds_no_secret(spec: SandboxSpec,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("ENCLAVE_MASTER_KEY", "secret-from-host")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-from-host")
    argv = bwrap.sandbox_argv(spec, ["true"])
    assert "secret-from-host" not in " ".join(argv)
    env = dict(_pairs(_split(argv)["bwrap"], "--setenv"))
    assert env["HOME"] == spec.home and env["PYTHONNOUSERSITE"] == "1"
    assert env["PYTHONSAFEPATH"] == "1"
    assert env["JUPYTER_CONFIG_DIR"].startswith(spec.home)  # tmpfs, never /work
    assert not any(k.startswith(("ENCLAVE_", "JUPYTERHUB_")) for k in env)


@pytest.mark.parametrize("name", ["ENCLAVE_MASTER_KEY", "ENCLAVE_OUTPUTS_DIR",
                                  "JUPYTERHUB_API_TOKEN", "AWS_SECRET_ACCESS_KEY",
                                  "GITHUB_TOKEN", "DB_PASSWORD", "LD_PRELOAD", "PYTHONSTARTUP",
                                  "API_KEY", "bad name"])
def test_secrets_and_loader_hooks_may_not_enter(spec: SandboxSpec, name: str) -> None:
    with pytest.raises(ValueError, match=r"may not enter|invalid"):
        bwrap.sandbox_argv(spec, ["true"], env={name: "x"})


@pytest.mark.parametrize(("uid", "user"), [(0, "root"), (999, "enc-x"), (61000, "../x"),
                                           (61000, "Alice")])
def test_a_sandbox_never_runs_as_root_or_under_an_odd_name(tmp_path: Path, uid: int,
                                                           user: str) -> None:
    with pytest.raises(ValueError):
        SandboxSpec(user, uid, uid, (), None, tmp_path, None)


def test_bind_sources_must_be_real_paths(spec: SandboxSpec, tmp_path: Path) -> None:
    from dataclasses import replace

    (tmp_path / "link").symlink_to(tmp_path / "work")
    with pytest.raises(ValueError, match="without symlinks"):
        bwrap.sandbox_argv(replace(spec, work_dir=tmp_path / "link"), ["true"])
    with pytest.raises(ValueError, match="under"):
        bwrap.sandbox_argv(spec, ["true"], extra_ro={"/etc/passwd": tmp_path / "work"})


def test_only_the_named_packages_enter_never_the_source_tree() -> None:
    root = Path(__file__).resolve().parents[2]
    binds = bwrap.code_binds(Path(os.sys.prefix))
    for folder, _rel in binds:
        assert folder != root and folder.name in {"output_control", "anonymization",
                                                  "sandbox"}
    hooks = bwrap.editable_hooks(Path(os.sys.prefix))
    assert all(h.startswith(bwrap.VENV) and "__editable__" in h for h in hooks)


def test_the_kernel_sandbox_drops_the_hub_token_and_the_network(tmp_path: Path) -> None:
    connection = tmp_path / "kernel-1.json"
    connection.write_text("{}")
    env = {"PATH": "/usr/bin", "HOME": "/home/enc-alice", "JUPYTERHUB_API_TOKEN": "tok",
           "JPY_PARENT_PID": "12", "ENCLAVE_MASTER_KEY": "k", "JUPYTERHUB_API_URL": "u",
           "PYTHONPATH": bwrap.LIB}
    argv = bwrap.kernel_argv(str(connection), ["python", "-m", "ipykernel_launcher"], env)
    assert argv[0] == bwrap.BWRAP
    for flag in ("--unshare-all", "--unshare-user", "--unshare-net", "--disable-userns",
                 "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert ("ALL",) in _pairs(argv, "--cap-drop", 1)
    joined = " ".join(argv)
    assert "tok" not in joined and "JPY_PARENT_PID" not in joined and "ENCLAVE_" not in joined
    assert (str(tmp_path), str(tmp_path)) in _pairs(argv, "--bind")
    assert ("/data", "/data") in _pairs(argv, "--ro-bind-try")
    with pytest.raises(ValueError, match="runtime folder"):
        bwrap.kernel_argv("/kernel.json", ["python"], env)


def test_the_kernelspec_runs_the_launcher_and_interrupts_by_message() -> None:
    spec = bwrap.kernelspec()
    assert spec["argv"] == [bwrap.PYTHON, "-m", "enclave.sandbox.kernel", "-f",
                            "{connection_file}"]
    assert spec["interrupt_mode"] == "message"


@pytest.mark.parametrize(("username", "unix"), [
    ("alice", "enc-alice"), ("a-b_c9", "enc-a-b_c9"),
    ("jean.dupont", None), ("x" * 40, None)])
def test_unix_names_of_enclave_users(username: str, unix: str | None) -> None:
    name = accounts.unix_name_for(username)
    assert len(name) <= 32 and name.startswith("enc-")
    if unix is not None:
        assert name == unix
    else:
        assert name != accounts.unix_name_for(username + "2")


@pytest.mark.parametrize("username", ["", "../etc", "Alice", "-rf", "a b", "a:b", "x" * 101,
                                      "é"])
def test_unsafe_usernames_get_no_account(username: str) -> None:
    with pytest.raises(AccountError):
        accounts.unix_name_for(username)


@pytest.mark.parametrize("project", ["", "prj/../x", "PRJ-1", "x" * 28, "-x", "a.b"])
def test_unsafe_project_ids_get_no_group(project: str) -> None:
    with pytest.raises(AccountError):
        accounts.project_group_name(project)


def test_accounts_need_root(monkeypatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailable, match="needs root"):
        accounts.ensure_account("alice")
    assert "not root" in (sandbox_run.unavailable_reason() or "")


def test_cgroup_v1_limits_are_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    for controller in ("memory", "pids", "cpu"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    group = limits.create_cgroup("t1", 256 * MiB, 32, 0.5, root=tmp_path)
    assert group is not None and group.version == "v1"
    base = tmp_path / "memory" / "enclave" / "t1"
    assert (base / "memory.limit_in_bytes").read_text() == str(256 * MiB)
    assert (tmp_path / "pids" / "enclave" / "t1" / "pids.max").read_text() == "32"
    assert (tmp_path / "cpu" / "enclave" / "t1" / "cpu.cfs_quota_us").read_text() == "50000"
    assert group.limits_memory and len(group.procs_files) == 3


def test_the_enclave_cgroup_weighs_one_process_per_sandbox_in_it(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    for controller in ("memory", "pids", "cpu"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    shares = tmp_path / "cpu" / "enclave" / "cpu.shares"
    for index in range(3):
        assert limits.create_cgroup(f"w{index}", 256 * MiB, 32, 1.0, root=tmp_path)
    assert shares.read_text() == str(3 * limits.SHARES_V1)
    # (cgroupfs removes a cgroup's files with it; this plain folder needs rmtree.)
    shutil.rmtree(shares.parent / "w0")
    limits.balance_parent_weight(shares.parent, "v1")
    assert shares.read_text() == str(2 * limits.SHARES_V1)
    for index in (1, 2):
        shutil.rmtree(shares.parent / f"w{index}")
    limits.balance_parent_weight(shares.parent, "v1")
    assert shares.read_text() == str(limits.SHARES_V1)  # never below one process


def test_run_notebook_refuses_to_run_unsandboxed_by_default(monkeypatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox_run, "unavailable_reason", lambda: "no bubblewrap here")
    args = (notebook_runs.template("getting_started_en.ipynb"), tmp_path / "extract",
            tmp_path / "outputs", tmp_path / "executed.ipynb")
    with pytest.raises(SandboxUnavailable, match="no bubblewrap here"):
        notebook_runs.run_notebook(*args)
    calls = []
    monkeypatch.setattr(notebook_runs, "_run_unsandboxed",
                        lambda *a: calls.append(a) or "fallback")
    assert notebook_runs.run_notebook(*args, allow_unsandboxed=True) == "fallback"
    assert len(calls) == 1
