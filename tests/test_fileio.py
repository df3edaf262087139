"""Atomic writes: all or nothing, no temp files left, the usual permissions, a clear full-disk error."""

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from utils.errors import DiskFullError
from utils.fileio import FILE_MODE, atomic_open, atomic_write_bytes, atomic_write_text


def test_a_write_replaces_the_file_with_the_mode_open_would_give(tmp_path):
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    target = tmp_path / "config.json"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    assert FILE_MODE & stat.S_IRUSR and FILE_MODE & stat.S_IWUSR
    assert os.listdir(tmp_path) == ["config.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    target = tmp_path / "metrics.csv"
    target.write_bytes(b"step,a\n0,1\n")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"step,a\n0,1\n"
    assert os.listdir(tmp_path) == ["metrics.csv"]


@pytest.fixture
def small_filesystem(tmpfs_mount) -> Path:
    """A real 1 MB tmpfs (see conftest.tmpfs_mount)."""
    return tmpfs_mount("1m")


def test_a_write_that_fills_the_disk_names_file_sizes_and_keeps_the_old_file(small_filesystem: Path) -> None:
    target = small_filesystem / "config.json"
    target.write_text("old")

    with pytest.raises(DiskFullError) as caught:
        atomic_write_bytes(target, bytes(2_000_000))

    message = str(caught.value)
    assert message.startswith(f"cannot write {target}: no space left on device (needs about 2.0 MB, ")
    assert re.search(r", 1\.0 MB free on ", message), message
    assert "\n" not in message
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert target.read_text() == "old"
    assert os.listdir(small_filesystem) == ["config.json"]


def test_an_enospc_raised_while_writing_becomes_a_disk_full_error(tmp_path: Path) -> None:
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    target = tmp_path / "metrics.csv"
    target.write_text("step\n")

    with pytest.raises(DiskFullError, match=rf"cannot write {re.escape(str(target))}: no space left on device"):
        with atomic_open(target) as handle:
            handle.write(b"step\n0\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a writer on a full disk meets

    assert target.read_text() == "step\n"
    assert os.listdir(tmp_path) == ["metrics.csv"]


def test_other_os_errors_pass_through_unchanged(tmp_path: Path) -> None:
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    with pytest.raises(OSError) as caught, atomic_open(tmp_path / "a.txt"):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    assert type(caught.value) is OSError
    assert os.listdir(tmp_path) == []
