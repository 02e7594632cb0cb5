"""Disk use as the hub's poll and the contents API measure it for the per-project limit."""

from __future__ import annotations

import os
from pathlib import Path

from enclave.sandbox.disk import disk_usage


def test_usage_counts_allocated_bytes_under_every_root(tmp_path: Path) -> None:
    work, outputs = tmp_path / "work", tmp_path / "outputs"
    (work / "sub").mkdir(parents=True)
    outputs.mkdir()
    (work / "sub" / "a.bin").write_bytes(os.urandom(300_000))
    (outputs / "b.bin").write_bytes(os.urandom(200_000))
    used = disk_usage((work, outputs))
    assert used is not None and 500_000 <= used < 600_000
    assert disk_usage((work,)) is not None and disk_usage((work,)) < used  # type: ignore[operator]


def test_symlinks_are_not_followed_and_hard_links_count_once(tmp_path: Path) -> None:
    work, big = tmp_path / "work", tmp_path / "big"
    work.mkdir()
    big.mkdir()
    (big / "huge.bin").write_bytes(os.urandom(1_000_000))
    (work / "link").symlink_to(big)
    (work / "one.bin").write_bytes(os.urandom(100_000))
    os.link(work / "one.bin", work / "two.bin")
    used = disk_usage((work,))
    assert used is not None and used < 200_000


def test_too_many_files_count_as_over_the_limit(tmp_path: Path) -> None:
    for index in range(30):
        (tmp_path / f"f{index}").touch()
    assert disk_usage((tmp_path,), max_entries=20) is None
    assert disk_usage((tmp_path,), max_entries=40) == 0


def test_a_missing_folder_holds_nothing(tmp_path: Path) -> None:
    assert disk_usage((tmp_path / "absent",)) == 0
