"""The same script under a real torchrun with two gloo ranks on the CPU."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import prewarmed
from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from train_support import assert_perf_at_every_epoch, make_run, read_metrics, tensorboard_steps, wait_for
from utils.checkpointing.io import load_checkpoint

pytestmark = pytest.mark.slow


def test_two_ranks_train_one_run_with_one_set_of_outputs(experiments_root):
    run_dir = make_run("exp", "ddp", "training.epochs=2", "debug.stats_every=5")  # hooks on the unwrapped model
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SRC / "02_train.py"), "-e", "exp", "-r", "ddp", "--device", "cpu",
    ]
    result = run_in_group(command, timeout=300, cwd=REPO_ROOT, env=subprocess_env(OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    steps_per_epoch = 10  # each rank trains 628 of the 1,257 images, batch 64
    metrics = read_metrics(run_dir)
    assert list(metrics["step"]) == list(range(2 * steps_per_epoch))
    assert metrics["test/accuracy"].dropna().iloc[0] > 0.8
    assert tensorboard_steps(run_dir, "train/loss") == list(range(2 * steps_per_epoch))
    stats = metrics["debug/features.0.0/output_mean"]
    assert list(metrics.loc[stats.notna(), "step"]) == [0, 5, 10, 15], "rank 0 logs them at global steps"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 2 * steps_per_epoch
    assert not any(k.startswith("module.") for k in load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    assert [p.name for p in experiments_root.iterdir()] == ["exp"]
    assert [p.name for p in (experiments_root / "exp").iterdir()] == ["ddp"]
    assert len(list((run_dir / "logs").glob("metrics*.csv"))) == 1
    assert result.stdout.count("finished in") == 1  # only rank 0 prints the summary
    assert_perf_at_every_epoch(metrics, steps_per_epoch, samples_per_epoch=2 * 628)  # both ranks' samples



# A torchrun worker that prints the step at which each rank's loop stopped (ranks other than 0
# write no files to read that from), then runs 02_train.py as torchrun would, `__main__` included
REPORT_STEPS = """\
import os, sys
from training.trainer import Trainer

fit = Trainer.fit


def fit_and_report(self):
    try:
        fit(self)
    finally:
        print(f"rank {os.environ['RANK']} stopped at step {self.state.global_step}", flush=True)


Trainer.fit = fit_and_report
"""
WORKER = REPORT_STEPS + """\
import runpy
sys.argv = [SCRIPT, *sys.argv[1:]]
runpy.run_path(SCRIPT, run_name="__main__")
"""
# ... or its `main` with an epoch callback that stops the run at epoch 2 (asked on rank 0 only)
CALLBACK_WORKER = REPORT_STEPS + """\
import importlib.util
spec = importlib.util.spec_from_file_location("train_cli", SCRIPT)
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)


def stop_at_two(epoch, history):
    assert os.environ["RANK"] == "0", "callbacks run on rank 0 only"
    return "pruned at epoch 2" if epoch == 2 else None


sys.exit(cli.main(sys.argv[1:], callbacks=[stop_at_two]))
"""
TINY = ("model.channels=[4,8]", "model.hidden=16", "data.batch_size=128", "training.epochs=6",
        "training.stop_check_every=2", "logging.tensorboard=false", "deterministic=true")
# each rank trains 629 of the 1,257 images: 5 steps an epoch in batches of 128
# The SIGTERM test signals a rank once epoch 1 is saved: batches of 8 make an epoch 79 steps (~0.5 s), so
# ~2.5 s of training is left when the signal lands (batches of 128: ~0.35 s, and the run could end first)
SIGNALLED = (*TINY, "data.batch_size=8")
SIGNALLED_EPOCH_STEPS = 79  # ceil(629 / 8)
SIGNALLED_STEPS = 6 * SIGNALLED_EPOCH_STEPS
# torchrun's report of a failed worker: `rank      : 1 (local_rank: 1)` then `exitcode  : 143 (pid: ...)`
EXIT_REPORT = re.compile(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


def _torchrun(worker: Path, run: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
            "-e", "exp", "-r", run, "--device", "cpu", *args]


def _worker_of_rank(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker process with RANK=`rank` (torchrun starts them as children)."""
    children = [int(pid) for path in Path(f"/proc/{launcher}/task").glob("*/children")
                for pid in path.read_text().split()]
    for pid in children:
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return pid
    raise AssertionError(f"no worker with RANK={rank} among torchrun's children {children}")


def _stopped_steps(stdout: str) -> dict[int, int]:
    return {int(rank): int(step) for rank, step in re.findall(r"rank (\d) stopped at step (\d+)", stdout)}


def test_a_sigterm_to_one_rank_stops_every_rank_at_one_step_and_the_resume_is_exact(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(f"SCRIPT = {str(SRC / '02_train.py')!r}\n{WORKER}")
    env = subprocess_env(OMP_NUM_THREADS="1")
    reference, interrupted = make_run("exp", "reference", *SIGNALLED), make_run("exp", "cut", *SIGNALLED)
    done = run_in_group(_torchrun(worker, "reference"), timeout=120, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _stopped_steps(done.stdout) == {0: SIGNALLED_STEPS, 1: SIGNALLED_STEPS}

    launcher = prewarmed.popen(_torchrun(worker, "cut"), start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env)
    try:
        wait_for((interrupted / "checkpoints" / "last.pt").exists, launcher)  # epoch 1 saved
        os.kill(_worker_of_rank(launcher.pid, 1), signal.SIGTERM)
        stdout, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
    assert launcher.returncode != 0, "torchrun reports workers that exit 143 as failed"
    assert dict(EXIT_REPORT.findall(stderr)) == {"0": "143", "1": "143"}, stderr[-3000:]
    stopped = _stopped_steps(stdout)
    assert stopped[0] == stopped[1], stopped
    step = stopped[0]
    assert SIGNALLED_EPOCH_STEPS <= step < SIGNALLED_STEPS, "the signal stops training part-way"
    assert load_checkpoint(interrupted / "checkpoints" / "last.pt")["global_step"] == step
    assert f"at step {step}: saved last.pt" in (interrupted / "logs" / "log.txt").read_text()

    resumed = run_in_group(_torchrun(worker, "cut", "--resume"), timeout=120, cwd=REPO_ROOT, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_metrics(interrupted)["step"].tolist() == list(range(SIGNALLED_STEPS))
    expected = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(interrupted / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    # the cut epoch's means count both ranks' batches before the stop too (saved added up, resumed on rank 0)
    expected_means, means = (
        read_metrics(run).filter(like="train/epoch_").dropna().values.ravel().tolist() for run in (reference, interrupted)
    )
    assert expected_means and means == pytest.approx(expected_means, rel=1e-5)


def test_a_sigterm_to_torchrun_itself_saves_once_and_exits_1_as_the_readme_says(tmp_path):
    """torchrun's agent turns a SIGTERM into a SignalException: it forwards the signal to every worker
    (each saves and exits 143), waits for them, then exits 1 with a traceback; no option changes
    that code, so the README says it, and this test holds the README to it. The resume from that
    last.pt is the one the test above checks exact."""
    worker = tmp_path / "worker.py"
    worker.write_text(f"SCRIPT = {str(SRC / '02_train.py')!r}\n{WORKER}")
    run_dir = make_run("exp", "agent", *SIGNALLED)
    launcher = prewarmed.popen(_torchrun(worker, "agent"), start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                               env=subprocess_env(OMP_NUM_THREADS="1"))
    try:
        wait_for((run_dir / "checkpoints" / "last.pt").exists, launcher)  # epoch 1 saved
        launcher.send_signal(signal.SIGTERM)
        stdout, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
    assert launcher.returncode == 1, stderr[-3000:]
    assert "SignalException" in stderr and "got signal: 15" in stderr
    stopped = _stopped_steps(stdout)
    assert stopped[0] == stopped[1] and SIGNALLED_EPOCH_STEPS <= stopped[0] < SIGNALLED_STEPS, stopped
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == stopped[0]
    assert f"at step {stopped[0]}: saved last.pt" in (run_dir / "logs" / "log.txt").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "| SIGTERM or SIGINT to torchrun's pid (Ctrl-C in its terminal) |" in readme
    assert "torchrun exits 1 with a `SignalException` traceback" in readme


def test_an_epoch_callback_on_rank_0_stops_every_rank_at_its_epoch(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(f"SCRIPT = {str(SRC / '02_train.py')!r}\n{CALLBACK_WORKER}")
    run_dir = make_run("exp", "pruned", *TINY)
    done = run_in_group(_torchrun(worker, "pruned"), timeout=120, cwd=REPO_ROOT,
                        env=subprocess_env(OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _stopped_steps(done.stdout) == {0: 2 * 5, 1: 2 * 5}
    assert json.loads((run_dir / "logs" / "summary.json").read_text())["stopped_early"] == "pruned at epoch 2"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 2
