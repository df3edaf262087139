"""The SLURM executor through submitit: the spec's `slurm` block, the sbatch job of a trial and a
driver that reattaches to it (with stand-ins for sbatch, sacct and scancel), and real jobs of
submitit's local executor: a forced timeout that requeues and resumes exactly, and a stop."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit
import torch

from conftest import REPO_ROOT, SRC, subprocess_env
from sweeps.slurm import SlurmExecutor, trial_argv
from sweeps.spec import parse_spec
from sweeps.state import TrialRecord, read_state, sweep_dir
from sweeps.trials import train_command
from train_support import make_run, read_metrics
from utils.errors import SweepSpecError

TINY = {"training.draw_every": None, "logging.wandb": False, "logging.tensorboard": False, "data.batch_size": 128,
        "model.channels": [4, 8], "model.hidden": 16}
GRID = {"name": "sl", "method": "grid", "parameters": {"optimizer.lr": [0.01]}, "metric": "val/accuracy",
        "mode": "max", "set": {**TINY, "training.epochs": 4}}
# For the tests that signal a job once epoch 1 is saved: batches of 4 make an epoch 315 steps (~0.8 s),
# so ~2.4 s of training is left when the signal lands (batches of 128: ~0.2 s, and the trial could end first)
SIGNALLED_BATCH = 4


def slurm_spec(**slurm):
    return parse_spec({**GRID, "slurm": slurm}, "spec.json")


def executor_for(spec) -> SlurmExecutor:
    return SlurmExecutor(spec, "e", sweep_dir("e", spec.name))


def tiny_run(run: str, batch_size: int = 128) -> Path:
    return make_run("e", run, "training.epochs=4", "logging.tensorboard=false", f"data.batch_size={batch_size}",
                    "model.channels=[4, 8]", "model.hidden=16", "optimizer.lr=0.01")


def test_a_trial_with_several_gpus_runs_under_torchrun_with_one_rank_per_gpu() -> None:
    command = ["src/02_train.py", "-e", "e", "-r", "r", "--resume"]
    assert trial_argv(command, 2) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                      "--nproc_per_node=2", "src/02_train.py", "-e", "e", "-r", "r"]
    assert trial_argv(command, 1) == [sys.executable, "src/02_train.py", "-e", "e", "-r", "r"]


def test_without_slurm_the_executor_says_how_to_run_the_jobs_here(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    monkeypatch.delenv("SWEEP_SUBMITIT_CLUSTER", raising=False)
    with pytest.raises(SweepSpecError, match="SWEEP_SUBMITIT_CLUSTER=local"):
        executor_for(slurm_spec())
    assert not sweep_dir("e", "sl").exists()


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """sbatch, sacct, scancel and srun stand-ins on PATH; sacct answers the state in `state`."""
    bin_dir, record = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    record.mkdir()
    (record / "state").write_text("RUNNING")
    scripts = {
        "srun": "exit 0",
        "sbatch": f'cp "$1" {record}/sbatch.sh; echo "Submitted batch job 4242"',
        "sacct": f"printf 'JobID|State|NodeList\\n4242|%s|node1\\n' \"$(cat {record}/state)\"",
        "scancel": f'echo "$@" >> {record}/scancel.log',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SWEEP_SUBMITIT_CLUSTER", raising=False)
    return record


def test_each_trial_is_one_sbatch_job_with_the_spec_resources_and_a_rerun_reattaches_to_it(fake_slurm: Path) -> None:
    spec = slurm_spec(partition="gpu", time_min=30, gpus_per_trial=2, cpus_per_trial=8)
    run = tiny_run("sl-000")
    record = TrialRecord(0, "sl-000", {"optimizer.lr": 0.01}, state="running")
    executor_for(spec).launch(record, train_command("e", "sl-000", resume=False))
    assert record.job_id == "4242"
    sbatch = (fake_slurm / "sbatch.sh").read_text()
    for line in ("--partition=gpu", "--time=30", "--gpus-per-node=2", "--cpus-per-task=8",
                 "--ntasks-per-node=1", "--nodes=1", "--job-name=sl-000", "--signal=USR2@"):
        assert f"#SBATCH {line}" in sbatch
    job = submitit.SlurmJob(sweep_dir("e", "sl") / "submitit", "4242").submission().function
    assert job.argv[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert job.last_checkpoint == str(run / "checkpoints" / "last.pt")

    rerun = executor_for(spec)  # the driver was killed; its job still runs
    assert rerun.reattach(record) and rerun.running() == 1 and rerun.poll() == []
    (fake_slurm / "state").write_text("OUT_OF_MEMORY")
    submitit.SlurmJob.watcher.clear()  # forget the cached RUNNING
    assert rerun.poll() == [(record, 1)]
    assert "ended without the trial's exit code" in (run / "logs" / "console.txt").read_text()
    assert not executor_for(spec).reattach(record)  # ended without a result: nothing to wait for


def test_stopping_the_driver_cancels_the_slurm_jobs(fake_slurm: Path) -> None:
    tiny_run("sl-000")
    record = TrialRecord(0, "sl-000", {"optimizer.lr": 0.01}, state="running", job_id="4242")
    executor = executor_for(slurm_spec())
    submitit.SlurmJob.watcher.clear()
    assert executor.reattach(record)
    assert executor.stop_all(signal.SIGTERM, timeout=0.5) == [(record, None)]  # still ending: left to finish
    assert (fake_slurm / "scancel.log").read_text().split() == ["4242"]


def job_processes(folder: Path) -> list[int]:
    """Pids of the submitit job processes (python -m submitit.core._submit FOLDER) of `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in argv and str(folder).encode() in argv:
            pids.append(int(proc.name))
    return pids


def wait_until(condition, process: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"ended first:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def send_timeout_signal(folder: Path) -> None:
    """What submitit's timer sends a job before its time limit (USR2); a job with a time limit
    under 50 minutes counts any such signal as a timeout, so this one is a forced timeout."""
    pids = job_processes(folder)
    assert len(pids) == 1, pids
    os.kill(pids[0], getattr(signal, f"SIG{submitit.JobEnvironment.USR_SIG}"))


@pytest.mark.slow
def test_a_forced_timeout_requeues_the_job_and_the_trial_resumes_with_every_step_once(tmp_path: Path) -> None:
    spec_path = tmp_path / "sl.json"
    spec_path.write_text(json.dumps({**GRID, "set": {**GRID["set"], "data.batch_size": SIGNALLED_BATCH},
                                     "slurm": {"time_min": 2, "cpus_per_trial": 1}}))
    command = [sys.executable, str(SRC / "04_sweep.py"), "-e", "e", "-s", str(spec_path), "--executor", "slurm"]
    env = subprocess_env(SWEEP_SUBMITIT_CLUSTER="local")
    del env["PYTHONPATH"]  # as without env.sh: the jobs must find the sweep code all the same
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
                              env=env, start_new_session=True)
    run = Path(os.environ["EXPERIMENTS_ROOT"]) / "e" / "sl-000"
    folder = sweep_dir("e", "sl") / "submitit"
    try:
        wait_until((run / "checkpoints" / "last.pt").exists, driver)  # epoch 1 of 4 is saved
        send_timeout_signal(folder)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
    assert driver.returncode == 0, output
    record = read_state("e", "sl").trials[0]
    assert (record.state, record.attempts, record.exit_code) == ("done", 1, 0)
    log = (folder / f"{record.job_id}_0_log.out").read_text()
    assert "this job is timed-out" in log and "Requeued job" in log and log.count("Starting with JobEnvironment") == 2
    assert "stopped by SIGTERM" in (run / "logs" / "log.txt").read_text()
    steps = read_metrics(run)["step"]
    checkpoint = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert steps.tolist() == list(range(checkpoint["global_step"]))  # every step once, none lost
    assert checkpoint["epoch"] == json.loads((run / "logs" / "summary.json").read_text())["epochs"] == 4


@pytest.mark.slow
def test_a_rerun_reattaches_to_a_running_local_job_and_a_stop_lets_the_trial_save(monkeypatch) -> None:
    monkeypatch.setenv("SWEEP_SUBMITIT_CLUSTER", "local")
    spec = slurm_spec(time_min=2)
    run = tiny_run("sl-000", batch_size=SIGNALLED_BATCH)
    record = TrialRecord(0, "sl-000", {"optimizer.lr": 0.01}, state="running")
    first = executor_for(spec)
    first.launch(record, [*train_command("e", "sl-000", resume=False), "--device", "cpu"])
    try:
        wait_until((run / "checkpoints" / "last.pt").exists)
        rerun = executor_for(spec)  # its driver was killed: the job runs on
        assert rerun.reattach(TrialRecord(**{**record.__dict__}))
        ended = rerun.stop_all(signal.SIGTERM, timeout=60)
    finally:
        first.stop_all(signal.SIGTERM, timeout=60)
    assert [code for _, code in ended] == [143]
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert read_metrics(run)["step"].tolist() == list(range(saved["global_step"])) and saved["epoch"] < 4
