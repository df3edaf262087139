"""A disk that fills up mid-run while every writer is on: one line naming the file, exit 1,
no traceback from any thread or from the text log."""

import errno
import signal

import pytest

from train_support import make_run, start_training, wait_for

pytestmark = pytest.mark.slow


def _fill(folder) -> None:
    """Write a file in `folder` until the filesystem refuses with ENOSPC."""
    chunk = b"\0" * 65536
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    with open(folder / "filler-tail", "wb", buffering=0) as handle:  # the last partial chunk's room
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def _first_save_done(checkpoints) -> bool:
    """best.pt (epoch 1 always improves) is the save's last file; no temp file is left."""
    return (checkpoints / "best.pt").exists() and not any(checkpoints.glob(".*.tmp"))


def test_a_disk_that_fills_up_mid_run_ends_the_run_with_one_line_and_no_traceback(tmpfs_mount, monkeypatch):
    mount = tmpfs_mount("16m")
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(mount / "experiments"))
    run_dir = make_run("exp", "full", "logging.tensorboard=true", "training.epochs=6", "training.draw_every=1")
    process = start_training("exp", "full")
    try:
        wait_for(lambda: _first_save_done(run_dir / "checkpoints"), process)  # mid-run
        _fill(mount)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.communicate()
    assert process.returncode == 1, stderr
    for sign in ("Traceback", "Exception in thread", "Logging error"):
        assert sign not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "no space left on device" in line]
    assert len(errors) == 1, stderr
    assert str(run_dir) in errors[0] and "free" in errors[0]
