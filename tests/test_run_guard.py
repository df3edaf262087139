"""A session's claim on its run: one session at a time (flock, pid named), no planted link
followed out of the run, and the machine's refusals (read-only, full, a root that is a file)
as one line naming the path."""

import fcntl
import os
import signal
import subprocess
from pathlib import Path

import sys

import pytest

import prewarmed
from conftest import REPO_ROOT, SRC, run_in_group, run_script, subprocess_env
from train_support import make_run, train, train_command, wait_for
from utils.errors import RunBusyError, RunLinkError
from utils.runs.run import Run
from utils.run_guard import check_no_link_leads_out, claim_run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def test_a_claimed_run_names_its_holder_and_is_free_again_once_released():
    make_run("exp", "claim")
    run = Run.require("exp", "claim")
    lock = claim_run(run)
    assert run.lock_file.read_text() == f"{os.getpid()}\n"
    with pytest.raises(RunBusyError, match=f"pid {os.getpid()}") as caught:
        claim_run(run)  # a second open file is a second claimant, even in this process
    assert caught.value.pid == os.getpid()
    lock.release()
    assert run.lock_file.read_text() == ""
    claim_run(run).release()


def test_a_forked_child_such_as_a_data_worker_does_not_keep_the_run_locked():
    make_run("exp", "forked")
    run = Run.require("exp", "forked")
    lock = claim_run(run)
    read_end, write_end = os.pipe()
    started_read, started_write = os.pipe()
    child = os.fork()
    if child == 0:  # a worker outliving its session: alive until the test lets it go
        os.write(started_write, b"1")  # os.fork has returned here: the fork hooks have run
        os.read(read_end, 1)
        os._exit(0)
    try:
        assert os.read(started_read, 1) == b"1"
        lock.release()  # the session is gone; its child lives on
        claim_run(run).release()
    finally:
        os.write(write_end, b"1")
        os.waitpid(child, 0)
        for fd in (read_end, write_end, started_read, started_write):
            os.close(fd)


def test_links_inside_the_run_and_in_the_wandb_folder_pass_a_link_out_of_the_run_is_named(tmp_path):
    run_dir = make_run("exp", "links")
    offline = run_dir / "logs" / "wandb" / "offline-run-1" / "logs"
    offline.mkdir(parents=True)
    (offline / "debug-core.log").symlink_to(tmp_path / "cache-debug.log")  # what W&B itself does
    (run_dir / "logs" / "wandb" / "latest-run").symlink_to("offline-run-1")
    (run_dir / "plots" / "latest.png").symlink_to(run_dir / "plots" / "curves.png")
    check_no_link_leads_out(Run.require("exp", "links"))
    (run_dir / "logs" / "profile.txt").symlink_to(run_dir.parent)  # into the experiment, out of the run
    with pytest.raises(RunLinkError, match=f"^{run_dir / 'logs' / 'profile.txt'} is a symlink to {run_dir.parent},"):
        check_no_link_leads_out(Run.require("exp", "links"))


@pytest.mark.slow
def test_a_run_held_by_another_process_is_refused_naming_its_pid_and_nothing_changes():
    run_dir = make_run("exp", "held")
    with open(run_dir / "session.lock", "w") as held:  # this test process holds the run
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        before = _snapshot(run_dir)
        for start in ((), ("--restart",)):
            refused = train("exp", "held", *start)
            _one_error_line(refused, 2, f"pid {os.getpid()}", "in use by another training session")
        assert _snapshot(run_dir) == before


@pytest.mark.slow
def test_under_torchrun_every_rank_of_a_refused_session_exits_without_hanging():
    make_run("exp", "ddp")
    run = Run.require("exp", "ddp")
    with open(run.lock_file, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(SRC / "02_train.py"), "-e", "exp", "-r", "ddp", "--device", "cpu"]
        result = run_in_group(command, timeout=120, cwd=REPO_ROOT, env=subprocess_env(OMP_NUM_THREADS="1"))
    assert result.returncode != 0
    refusal = f"in use by another training session (pid {os.getpid()}"
    assert result.stderr.count(refusal) == 2, result.stderr[-3000:]  # rank 0 and rank 1 each say so, and exit
    assert not (run.path / "logs" / "log.txt").exists()


@pytest.mark.slow
def test_of_two_real_sessions_the_second_is_refused_and_a_sigkilled_holder_frees_the_run():
    # batches of 8: epochs of 158 steps, so the first session is still training when it is stopped
    run_dir = make_run("exp", "two", "data.batch_size=8", "training.epochs=20")
    lock = run_dir / "session.lock"
    first = prewarmed.popen(train_command("exp", "two"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env(), cwd=REPO_ROOT, start_new_session=True)
    try:
        wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid), first)
        os.killpg(first.pid, signal.SIGSTOP)  # holds the lock for as long as the test needs
        second = train("exp", "two", "--resume")
        _one_error_line(second, 2, f"pid {first.pid}")
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert first.returncode == -signal.SIGKILL
    with open(lock, "r+") as handle:  # the kernel released the killed holder's lock
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.slow
@pytest.mark.parametrize("planted", ["logs/log.txt", "checkpoints"])
def test_a_symlink_planted_in_a_run_is_refused_naming_it_and_nothing_outside_is_written(tmp_path, planted):
    run_dir = make_run("exp", "linked")
    outside = tmp_path / "outside"
    outside.mkdir()
    if planted == "checkpoints":
        target = outside / "dir"
        target.mkdir()
        (run_dir / "checkpoints").rmdir()
    else:
        target = outside / "file.txt"
        target.write_text("precious\n")
    (run_dir / planted).symlink_to(target)
    before = _snapshot(outside)

    refused = train("exp", "linked")
    _one_error_line(refused, 2, str(run_dir / planted), "symlink", str(target))
    assert _snapshot(outside) == before and sorted(p.name for p in outside.rglob("*")) == sorted(
        p.name for p in [target]), "nothing may be written outside the experiments root"


@pytest.mark.slow
def test_a_nonexistent_root_is_created_and_said_once_and_a_root_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "new" / "experiments"
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(root))
    created = run_script("01_initialize.py", "-e", "exp", "-r", "first", "--set", "logging.wandb=false")
    assert created.returncode == 0, created.stderr
    output = created.stdout + created.stderr
    assert output.count(f"created the experiments root {root}") == 1, output
    assert (root / "exp" / "first" / "config.json").is_file()

    as_file = tmp_path / "a-file"
    as_file.write_text("not a folder\n")
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(as_file))
    every_cli = (
        ("01_initialize.py", ("-e", "exp", "-r", "r")), ("02_train.py", ("-e", "exp", "-r", "r")),
        ("03_compare.py", ("-e", "exp")),
        ("04_sweep.py", ("-e", "exp", "-s", str(REPO_ROOT / "config" / "sweeps" / "example.json"), "--dry-run")),
    )
    for script, args in every_cli:
        _one_error_line(run_script(script, *args), 1, str(as_file), "is a file, not a folder", "EXPERIMENTS_ROOT")
    assert as_file.read_text() == "not a folder\n"


def _remount_read_only(point: Path) -> None:
    done = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {done.stderr.strip()}")


@pytest.mark.slow
def test_a_read_only_run_or_experiment_folder_is_one_line_naming_the_path(tmpfs_mount, monkeypatch):
    point = tmpfs_mount("16m")
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(point / "experiments"))
    run_dir = make_run("exp", "ro")
    _remount_read_only(point)
    for start in ("--resume", "--restart"):  # a plain start takes the same first step
        _one_error_line(train("exp", "ro", start), 1, str(run_dir / "session.lock"), "read-only")
    created = run_script("01_initialize.py", "-e", "exp", "-r", "new", "--set", "logging.wandb=false")
    _one_error_line(created, 1, str(run_dir.parent), "read-only")


def _fill(point: Path) -> None:
    """Write until the tmpfs at `point` is full."""
    fd = os.open(point / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_full_disk_at_initialization_or_at_training_start_is_one_line_naming_the_path(tmpfs_mount, monkeypatch):
    point = tmpfs_mount("8m")
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(point / "experiments"))
    run_dir = make_run("exp", "full")
    _fill(point)
    _one_error_line(train("exp", "full"), 1, str(run_dir), "no space left on device")
    created = run_script("01_initialize.py", "-e", "exp", "-r", "new", "--set", "logging.wandb=false")
    _one_error_line(created, 1, str(run_dir.parent), "no space left on device")
    assert not (run_dir.parent / "new").exists()
