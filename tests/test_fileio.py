"""Atomic writes: all or nothing, no temp files left, the usual permissions."""

import os
import stat

import pytest

from utils.fileio import FILE_MODE, atomic_write_bytes, atomic_write_text


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
