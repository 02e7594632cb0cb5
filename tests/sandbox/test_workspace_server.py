"""The workspace server's sandbox and its download controls, checked without starting a hub.

The argv of a workspace server carries no secret (the hub's token travels by descriptor), binds
the three run folders, and outlives the hub; the contents manager, run on a real folder, serves
notebooks and small text, refuses data, binaries, large files and symlinks out of the root, and
logs every refusal.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from enclave.hub.proxy import hub_target, proxy_target
from enclave.sandbox import bwrap, server
from enclave.sandbox.bwrap import MiB, SandboxSpec
from enclave.sandbox.server_guard import GuardedContentsManager, log_refusal

HUB_SOCKET = Path("/srv/enclave/run/hub/hub.sock")
TOKEN = "secret-hub-token-0123456789"


@pytest.fixture
def spec(tmp_path: Path) -> SandboxSpec:
    for name in ("extract", "work", "outputs", "sock", "hub", "events"):
        (tmp_path / name).mkdir()
    return SandboxSpec("enc-alice", 61000, 61000, (("encp-prj-1", 62000),),
                       tmp_path / "extract", tmp_path / "work", tmp_path / "outputs",
                       memory_bytes=512 * MiB, nproc=64, die_with_parent=False)


def _hub_env() -> dict[str, str]:
    quoted = "%2Fsrv%2Fenclave%2Frun%2Fhub%2Fhub.sock"
    return {"JUPYTERHUB_API_TOKEN": TOKEN, "JPY_API_TOKEN": TOKEN,
            "JUPYTERHUB_API_URL": f"http+unix://{quoted}/hub/api",
            "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:0/user/alice/prj-1/",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/prj-1/",
            "JUPYTERHUB_ROOT_DIR": "/home/alice", "PATH": "/usr/bin",
            "PYTHONPATH": "/hub/site-packages", "ENCLAVE_MASTER_KEY": "k"}


def test_the_hub_variables_are_rewritten_for_the_sandbox_and_nothing_else_passes() -> None:
    env = server.hub_env(_hub_env(), HUB_SOCKET)
    assert set(env) == {"JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL",
                        "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_DISABLE_USER_CONFIG"}
    assert env["JUPYTERHUB_API_URL"] == "http+unix://%2Frun%2Fenclave%2Fhub%2Fhub.sock/hub/api"
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://127.0.0.1:8888/user/alice/prj-1/"
    assert env["JUPYTERHUB_DISABLE_USER_CONFIG"] == "1"


def test_the_server_argv_carries_no_secret_and_outlives_the_hub(spec: SandboxSpec,
                                                                 tmp_path: Path) -> None:
    fd = os.memfd_create("t")
    try:
        argv = server.server_argv(spec, socket_dir=tmp_path / "sock",
                                  hub_socket_dir=tmp_path / "hub",
                                  events_dir=tmp_path / "events", hub_env_fd=fd)
    finally:
        os.close(fd)
    joined = " ".join(argv)
    assert TOKEN not in joined and "JUPYTERHUB_" not in joined and "ENCLAVE_" not in joined
    assert "--die-with-parent" not in argv
    assert argv[-4:] == [bwrap.PYTHON, "-m", "enclave.sandbox.server", "--disk-limit-bytes=0"]
    binds = [tuple(argv[i:i + 3]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert ("--bind", f"{bwrap.STAGE_DIR}/run0", "/run/enclave/server") in binds
    assert ("--ro-bind", f"{bwrap.STAGE_DIR}/run1", "/run/enclave/hub") in binds
    assert ("--bind", f"{bwrap.STAGE_DIR}/run2", "/run/enclave/events") in binds
    assert ("--ro-bind-data", str(fd), f"{bwrap.SECRETS}/{server.HUB_ENV_NAME}") == tuple(
        argv[argv.index("--ro-bind-data"):argv.index("--ro-bind-data") + 3])
    with pytest.raises(ValueError, match="outlive a hub restart"):
        server.server_argv(replace(spec, die_with_parent=True), socket_dir=tmp_path / "sock",
                           hub_socket_dir=tmp_path / "hub", events_dir=tmp_path / "events",
                           hub_env_fd=3)


def test_the_disk_limit_reaches_the_server_as_an_argument_and_must_not_be_negative(
        spec: SandboxSpec, tmp_path: Path) -> None:
    dirs = {"socket_dir": tmp_path / "sock", "hub_socket_dir": tmp_path / "hub",
            "events_dir": tmp_path / "events"}
    for folder in dirs.values():
        folder.mkdir(exist_ok=True)
    argv = server.server_argv(spec, hub_env_fd=3, disk_limit_bytes=5 * 1024 * 1024, **dirs)
    assert argv[-1] == "--disk-limit-bytes=5242880"
    with pytest.raises(ValueError, match="disk_limit_bytes"):
        server.server_argv(spec, hub_env_fd=3, disk_limit_bytes=-1, **dirs)


def test_node_is_masked_inside_the_sandbox(spec: SandboxSpec) -> None:
    argv = bwrap.sandbox_argv(spec, ["true"])
    masked = {argv[i + 2] for i, a in enumerate(argv)
              if a == "--ro-bind" and argv[i + 1] == f"{bwrap.STAGE_DIR}/empty"}
    assert set(bwrap.hidden_programs()) <= masked
    for program in bwrap.hidden_programs():
        assert program.startswith("/usr/") and os.path.basename(program) in ("node", "nodejs")


def test_run_binds_refuse_odd_names(spec: SandboxSpec, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain lower-case word"):
        bwrap.sandbox_argv(spec, ["true"], run_binds=[(tmp_path / "sock", "../etc", True)])


def test_the_server_runs_with_terminals_off_one_kernelspec_and_download_controls() -> None:
    flags = server.server_flags()
    assert f"--ServerApp.root_dir={bwrap.WORK}" in flags
    assert "--ServerApp.terminals_enabled=False" in flags
    assert "--LabApp.extension_manager=readonly" in flags
    assert "--KernelManager.transport=ipc" in flags
    assert f"--KernelSpecManager.allowed_kernelspecs={bwrap.KERNEL_NAME}" in flags
    assert ("--ServerApp.contents_manager_class="
            "enclave.sandbox.server_guard.GuardedContentsManager") in flags
    assert "--ServerApp.extra_services=enclave.sandbox.server_guard" in flags
    assert f"--ServerApp.sock={server.SERVER_SOCKET}" in flags


@pytest.mark.parametrize(("hub", "proxy"), [
    ("http+unix://%2Frun%2Fs.sock:80/user/a/p/", "http+unix://%2Frun%2Fs.sock/user/a/p/"),
    ("http+unix://%2Frun%2Fs.sock:80", "http+unix://%2Frun%2Fs.sock"),
    ("http://127.0.0.1:8888/x", "http://127.0.0.1:8888/x"),
])
def test_the_proxy_gets_unix_targets_without_the_default_port(hub: str, proxy: str) -> None:
    assert proxy_target(hub) == proxy
    assert hub_target(proxy) == hub


# -- the contents manager on a real folder --------------------------------------------------------

@pytest.fixture
def manager(tmp_path: Path) -> tuple[GuardedContentsManager, Path, Path]:
    root, data = tmp_path / "work", tmp_path / "data"
    root.mkdir()
    data.mkdir()
    (data / "eleves.parquet").write_bytes(b"PAR1" + b"\0" * 100)
    (data / "eleves.csv").write_text("eleve,note\np1,12\n")
    (root / "analyse.ipynb").write_text(json.dumps(
        {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (root / "notes.txt").write_text("notes")
    (root / "copy.csv").write_text("eleve,note\np1,12\n")
    (root / "big.txt").write_text("x" * (300 * 1024))
    (root / "image.py").write_bytes(b"\x89PNG\0\xff\xfe")
    (root / "link.txt").symlink_to(data / "eleves.csv")
    (root / "datadir").symlink_to(data)
    (root / "inside.txt").symlink_to(root / "notes.txt")
    events = tmp_path / "events.jsonl"
    return (GuardedContentsManager(root_dir=str(root), events_file=str(events)), root, events)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _refused(manager: GuardedContentsManager, call: Any, status: int) -> None:
    with pytest.raises(web.HTTPError) as error:
        _run(call)
    assert error.value.status_code == status, error.value


def _kinds(events: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in events.read_text().splitlines()]


def test_notebooks_and_small_text_open(manager: tuple[GuardedContentsManager, Path, Path],
                                       ) -> None:
    cm, _root, events = manager
    assert _run(cm.get("analyse.ipynb"))["type"] == "notebook"
    assert _run(cm.get("notes.txt"))["content"] == "notes"
    assert _run(cm.get("inside.txt"))["content"] == "notes"  # a symlink inside the root
    assert not events.exists()


@pytest.mark.parametrize(("path", "kwargs"), [
    ("copy.csv", {}), ("big.txt", {}), ("image.py", {}),
    ("notes.txt", {"format": "base64"}), ("analyse.ipynb", {"type": "file"}),
], ids=["data-suffix", "large-text", "binary", "base64", "notebook-as-file"])
def test_data_binaries_and_large_files_are_listed_but_not_served(
        manager: tuple[GuardedContentsManager, Path, Path], path: str,
        kwargs: dict[str, str]) -> None:
    cm, _root, events = manager
    _refused(cm, cm.get(path, **kwargs), 403)
    assert _run(cm.get(path, content=False))["name"] == path
    assert _kinds(events) == ["contents"]


@pytest.mark.parametrize("path", ["link.txt", "datadir", "datadir/eleves.csv",
                                  "datadir/eleves.parquet"])
def test_symlinks_out_of_the_root_are_refused_and_hidden(
        manager: tuple[GuardedContentsManager, Path, Path], path: str) -> None:
    cm, _root, events = manager
    _refused(cm, cm.get(path), 404)
    _refused(cm, cm.get(path, content=False), 404)
    listing = {entry["name"] for entry in _run(cm.get(""))["content"]}
    assert "link.txt" not in listing and "datadir" not in listing
    assert "inside.txt" in listing and "analyse.ipynb" in listing
    assert set(_kinds(events)) == {"symlink"}


def test_uploads_over_the_limit_are_refused_and_partial_chunks_removed(
        manager: tuple[GuardedContentsManager, Path, Path]) -> None:
    cm, root, events = manager
    cm.max_upload_bytes = 1000
    _run(cm.save({"type": "file", "format": "text", "content": "ok"}, "small.txt"))
    assert (root / "small.txt").read_text() == "ok"
    _refused(cm, cm.save({"type": "file", "format": "text", "content": "y" * 1001}, "a.txt"),
             413)
    assert not (root / "a.txt").exists()
    _run(cm.save({"type": "file", "format": "text", "content": "z" * 600, "chunk": 1}, "c.txt"))
    _refused(cm, cm.save({"type": "file", "format": "text", "content": "z" * 600,
                          "chunk": -1}, "c.txt"), 413)
    assert not (root / "c.txt").exists()
    assert _kinds(events) == ["upload", "upload"]


def test_saving_through_a_symlink_out_of_the_root_is_refused(
        manager: tuple[GuardedContentsManager, Path, Path], tmp_path: Path) -> None:
    cm, _root, _events = manager
    _refused(cm, cm.save({"type": "file", "format": "text", "content": "x"},
                         "datadir/planted.txt"), 404)
    assert not (tmp_path / "data" / "planted.txt").exists()


def test_the_refusal_log_is_bounded_and_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "events.jsonl").symlink_to(target)
    log_refusal("files", "x", "y", str(tmp_path / "events.jsonl"))
    assert not target.exists()
    log = tmp_path / "real.jsonl"
    for _ in range(20000):
        log_refusal("files", "p" * 300, "d" * 300, str(log))
    assert log.stat().st_size <= 1024 * 1024
