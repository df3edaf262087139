"""The local executor with real processes: output, exit codes, signals to the group, the death signal."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import SRC, subprocess_env
from sweeps.local import LocalExecutor, available_cores, is_trial_process, visible_gpus, worker_env
from sweeps.state import TrialRecord

# A stand-in for 02_train.py: prints, then sleeps in a child of its own (a grandchild of the
# driver, like a DataLoader worker); on SIGTERM it writes a file and exits 143, as a run does.
WORKER = textwrap.dedent("""
    import pathlib, signal, subprocess, sys, time
    run, seconds = sys.argv[1], float(sys.argv[2])
    marker = pathlib.Path(sys.argv[3])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    def stop(signum, frame):
        marker.write_text(signal.Signals(signum).name)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("training", run, child.pid, flush=True)
    time.sleep(seconds)
""")


def make_record(experiments_root: Path, number: int) -> TrialRecord:
    record = TrialRecord(number, f"t-{number:03d}", {})
    (experiments_root / "exp" / record.run / "logs").mkdir(parents=True)
    return record


def command(record: TrialRecord, seconds: float, marker: Path) -> list[str]:
    return ["-c", WORKER, record.run, str(seconds), str(marker)]


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_worker_env_divides_the_cores_unless_set_and_gives_each_slot_a_gpu(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert worker_env(0, 2, [])["OMP_NUM_THREADS"] == str(max(1, available_cores() // 2))
    assert worker_env(0, 10_000, [])["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(0, 2, [])
    assert [worker_env(slot, 3, ["4", "7"])["CUDA_VISIBLE_DEVICES"] for slot in range(3)] == ["4", "7", "4"]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_env(0, 2, [])["OMP_NUM_THREADS"] == "3"


def test_visible_gpus_come_from_cuda_visible_devices_or_nvidia_smi_without_torch(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    for none in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", none)
        assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: A100 (UUID: a)'\necho 'GPU 1: A100 (UUID: b)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus() == ["0", "1"]
    fake.unlink()
    assert visible_gpus() == []


def test_workers_run_at_once_write_their_console_and_report_their_exit_codes(experiments_root, tmp_path) -> None:
    executor = LocalExecutor("exp", workers=2, gpus=[])
    records = [make_record(experiments_root, n) for n in range(2)]
    try:
        executor.launch(records[0], command(records[0], 0.2, tmp_path / "m0"))
        executor.launch(records[1], ["-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)", records[1].run])
        assert executor.running() == 2 and all(record.pid for record in records)
        ended = []
        wait_for(lambda: ended.extend(executor.poll()) or len(ended) == 2)
    finally:
        executor.stop_all(signal.SIGKILL, 10)
    assert sorted((record.run, code) for record, code in ended) == [("t-000", 0), ("t-001", 3)]
    assert executor.running() == 0 and records[0].pid is None
    console = experiments_root / "exp" / "t-000" / "logs" / "console.txt"
    assert console.read_text().startswith("training t-000")
    assert "boom" in (experiments_root / "exp" / "t-001" / "logs" / "console.txt").read_text()


def test_stop_all_forwards_the_signal_to_each_worker_group_and_leaves_no_process(experiments_root, tmp_path) -> None:
    executor = LocalExecutor("exp", workers=1, gpus=[])
    record = make_record(experiments_root, 0)
    console = experiments_root / "exp" / "t-000" / "logs" / "console.txt"
    try:
        executor.launch(record, command(record, 600, tmp_path / "m0"))
        wait_for(lambda: console.is_file() and "training" in console.read_text())
        grandchild = int(console.read_text().split()[2])
        ended = executor.stop_all(signal.SIGINT, 30)
    finally:
        executor.stop_all(signal.SIGKILL, 10)
    assert ended == [(record, 130)]
    assert (tmp_path / "m0").read_text() == "SIGINT"
    wait_for(lambda: not is_alive(grandchild), timeout=10)


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_gets_sigterm_when_its_driver_is_killed_and_a_new_driver_can_wait_for_it(experiments_root, tmp_path):
    """The driver here is a small Python process using LocalExecutor; SIGKILL it, watch the worker."""
    make_record(experiments_root, 0)
    driver_code = textwrap.dedent(f"""
        import sys, time
        from sweeps.local import LocalExecutor
        from sweeps.state import TrialRecord
        record = TrialRecord(0, "t-000", {{}})
        LocalExecutor("exp", 1, gpus=[]).launch(record, {command(TrialRecord(0, 't-000', {}), 600, tmp_path / 'm0')!r})
        print(record.pid, flush=True)
        time.sleep(600)
    """)
    driver = subprocess.Popen([sys.executable, "-c", driver_code], stdout=subprocess.PIPE, text=True,
                              env=subprocess_env(), cwd=SRC)
    worker = None
    try:
        worker = int(driver.stdout.readline())
        console = experiments_root / "exp" / "t-000" / "logs" / "console.txt"
        wait_for(lambda: console.is_file() and "training" in console.read_text())
        assert is_trial_process(worker, "t-000") and not is_trial_process(worker, "t-001")
        adopter = LocalExecutor("exp", 1, gpus=[])
        record = TrialRecord(0, "t-000", {}, state="running", pid=worker)
        assert adopter.reattach(record) and adopter.running() == 1 and adopter.poll() == []
        driver.kill()
        driver.wait(10)
        wait_for(lambda: (tmp_path / "m0").is_file() and (tmp_path / "m0").read_text(), timeout=20)  # written
        assert (tmp_path / "m0").read_text() == "SIGTERM"
        ended = []
        wait_for(lambda: ended.extend(adopter.poll()) or ended, timeout=20)
        assert ended == [(record, None)], "an adopted worker's exit code is unknown"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if worker is not None and is_alive(worker):
            os.killpg(worker, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs")
def test_a_pid_that_is_gone_or_runs_something_else_is_not_a_trial() -> None:
    assert not is_trial_process(os.getpid(), "t-000")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not is_trial_process(process.pid, "-c")
