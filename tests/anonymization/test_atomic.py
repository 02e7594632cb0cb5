"""Atomic output: the destination appears whole or not at all."""

from __future__ import annotations

import pytest

from anonymization.atomic import atomic_output


def test_the_destination_appears_only_when_the_block_succeeds(tmp_path):
    dst = tmp_path / "file.bin"

    with atomic_output(dst) as temp:
        temp.write_bytes(b"content")
        assert not dst.exists()
        assert temp.parent == tmp_path
        assert temp.name.startswith(".file.bin.") and temp.name.endswith(".tmp")

    assert dst.read_bytes() == b"content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt], ids=lambda e: e.__name__)
def test_an_error_removes_the_temp_file_and_keeps_the_previous_destination(tmp_path, error):
    dst = tmp_path / "file.bin"
    dst.write_bytes(b"old")

    with pytest.raises(error), atomic_output(dst) as temp:
        temp.write_bytes(b"half written")
        raise error

    assert dst.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_a_missing_folder_fails_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "absent" / "file.bin"):
        pytest.fail("the block must not run")
