"""A run's life across sessions: data workers that let it exit, a refused second start,
--restart, --resume of a finished run, and what the console and log.txt say on the way."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import prewarmed
from conftest import REPO_ROOT, SRC, run_in_group, run_script, subprocess_env
from train_support import make_run, read_metrics, tensorboard_steps, train, train_command, wait_for
from utils.checkpointing.io import build_checkpoint, load_checkpoint, save_checkpoint
from utils.errors import RunHasOutputsError
from utils.logging import Logger
from utils.runs.run import Run
from utils.runs.outputs import refuse_plain_start

pytestmark = pytest.mark.slow

# batches of 8: 158 steps an epoch, so ~2 s of training is left when the SIGTERM is sent after epoch 1
# (batches of 32: ~0.9 s, and a run that finished first would exit 0)
WORKERS = ("data.num_workers=2", "data.batch_size=8", "logging.tensorboard=false")


def _train_in_group(exp: str, run: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Train in its own process group; a hang fails here instead of leaving workers behind."""
    return run_in_group(train_command(exp, run, *args), timeout=timeout, env=subprocess_env(), cwd=REPO_ROOT)


def _no_process_left(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_run_with_data_workers_exits_when_finished_stopped_or_resumed():
    run_dir = make_run("exp", "workers", *WORKERS)
    process = prewarmed.popen(
        train_command("exp", "workers"), start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), process)  # epoch 1 saved
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode == 143
        assert _no_process_left(process.pid), "data workers outlived the stopped run"
    finally:
        if process.poll() is None or not _no_process_left(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    resumed = _train_in_group("exp", "workers", "--resume")  # resumes, then finishes and exits
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "logs" / "summary.json").is_file()
    steps = read_metrics(run_dir)["step"].tolist()
    assert steps == list(range(load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"]))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_plain_start_is_refused_and_restart_keeps_the_old_outputs(experiments_root):
    run_dir = make_run("exp", "twice", "training.epochs=1")
    first = train("exp", "twice")
    assert first.returncode == 0, first.stderr
    before = _snapshot(run_dir)

    again = train("exp", "twice")
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "--resume" in lines[0] and "--restart" in lines[0], again.stderr
    assert _snapshot(run_dir) == before, "a refused start must change nothing"

    restarted = train("exp", "twice", "--restart")
    assert restarted.returncode == 0, restarted.stderr
    archives = list((run_dir / "restarted").iterdir())
    assert len(archives) == 1 and archives[0].name in restarted.stderr
    for name in ("logs/metrics.csv", "checkpoints/last.pt", "config.json"):
        assert (archives[0] / name).read_bytes() == before[name]
    steps = read_metrics(run_dir)["step"].tolist()
    assert steps == list(range(20)), "the new training starts at step 0, each step once"
    assert tensorboard_steps(run_dir, "train/loss") == list(range(20))
    assert len(list((run_dir / "logs").glob("events.out.tfevents.*"))) == 1

    listing = run_script("01_initialize.py", "--list")
    assert "restarted" not in listing.stdout and "twice" in listing.stdout


def test_resume_of_a_finished_run_says_so_and_trains_nothing():
    run_dir = make_run("exp", "done", "training.epochs=1", "logging.tensorboard=false")
    assert train("exp", "done").returncode == 0
    before = _snapshot(run_dir)
    env = subprocess_env(CURRENT_EXP="exp", CURRENT_RUN="done")  # 02_train's name fallback
    again = subprocess.run(
        [sys.executable, str(SRC / "02_train.py"), "--resume", "--device", "cpu"], capture_output=True,
        text=True, timeout=120, env=env, cwd=REPO_ROOT, check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "finished" in again.stdout and "nothing to do" in again.stdout
    assert _snapshot(run_dir) == before


def test_a_full_disk_stops_the_run_with_one_clear_line_and_resume_works_once_space_is_freed(
    tmpfs_mount, monkeypatch
):
    root = tmpfs_mount("4m") / "experiments"  # room for two checkpoints of the example, not three
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(root))
    run_dir = make_run("exp", "full", "logging.tensorboard=false", "training.epochs=4", "training.keep_checkpoints=4")
    result = train("exp", "full")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "no space left on device" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(run_dir) in errors[0] and "free" in errors[0]
    assert errors[0].split("no space left", 1)[1] in (run_dir / "logs" / "log.txt").read_text()

    subprocess.run(["mount", "-o", "remount,size=64m", str(root.parent)], check=True)
    resumed = train("exp", "full", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    steps = read_metrics(run_dir)["step"].tolist()
    assert steps == list(range(4 * 20))


def _one_error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def _foreign_checkpoint() -> dict:
    """A valid checkpoint of another model, with a best metric no epoch of the example beats."""
    other = torch.nn.Linear(3, 2)
    return build_checkpoint(model=other, optimizer=torch.optim.SGD(other.parameters(), lr=0.1), epoch=0,
                            global_step=5, best_metric=2.0)


def test_a_checkpoint_that_does_not_fit_is_refused_before_any_log_is_touched():
    run_dir = make_run("exp", "foreign")
    logger = Logger(Run.require("exp", "foreign"))  # 20 steps logged by a session that saved no checkpoint
    logger.initialize_csv()
    logger.initialize_tensorboard()
    for step in range(20):
        logger.log({"train/loss": 1.0 / (step + 1)}, step)
    logger.finish()
    save_checkpoint(run_dir / "checkpoints" / "last.pt", _foreign_checkpoint())  # at step 5
    logs = _snapshot(run_dir / "logs")

    refused = train("exp", "foreign", "--resume")
    _one_error_line(refused, 2, "weights do not fit")
    assert _snapshot(run_dir / "logs") == logs, "a refused resume must leave every log as it was"


def test_a_foreign_best_pt_is_skipped_at_the_test_naming_it_and_the_final_weights_are_tested():
    run_dir = make_run("exp", "best", "training.epochs=1")
    assert train("exp", "best").returncode == 0
    best = run_dir / "checkpoints" / "best.pt"
    save_checkpoint(best, _foreign_checkpoint())
    resumed = train("exp", "best", "--resume", "--set", "training.epochs=2")
    assert resumed.returncode == 0, resumed.stderr
    skipped = [line for line in resumed.stderr.splitlines() if "not testing" in line]
    assert len(skipped) == 1 and str(best) in skipped[0] and "do not fit" in skipped[0], skipped
    metrics = read_metrics(run_dir)
    assert metrics["step"].tolist() == list(range(40))
    assert metrics.set_index("step")["test/accuracy"].dropna().index.tolist() == [19, 39], "the final weights tested"


def test_a_run_killed_before_its_first_checkpoint_is_resumed_from_step_0_keeping_what_it_wrote():
    run_dir = make_run("exp", "early", "data.batch_size=1", "training.epochs=1")  # 1263 steps before last.pt
    metrics_csv = run_dir / "logs" / "metrics.csv"
    process = prewarmed.popen(train_command("exp", "early"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=subprocess_env(), cwd=REPO_ROOT)
    try:
        wait_for(lambda: metrics_csv.is_file() and len(metrics_csv.read_text().splitlines()) > 1, process)
        process.kill()
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    killed = metrics_csv.read_bytes()

    with pytest.raises(RunHasOutputsError, match="continue it with --resume .*starts over from step 0"):
        refuse_plain_start(Run.require("exp", "early"))  # what a plain start says
    resumed = train("exp", "early", "--resume", "--set", "data.batch_size=64")
    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_dir)["step"].tolist() == list(range(20)), "each step once, from step 0"
    assert "--resume starts over from step 0" in (run_dir / "logs" / "log.txt").read_text()
    (archive,) = (run_dir / "restarted").iterdir()
    assert (archive / "logs" / "metrics.csv").read_bytes() == killed, "the killed session's rows are kept aside"


def test_a_run_folder_without_config_json_names_a_command_that_works(experiments_root):
    run_dir = experiments_root / "exp" / "bare"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "notes.txt").write_text("keep me\n")
    line = _one_error_line(run_script("02_train.py", "-e", "exp", "-r", "bare"), 2, str(run_dir), "config.json")
    again = _one_error_line(run_script("01_initialize.py", "-e", "exp", "-r", "bare"), 2, "config.json")
    command = re.search(r"`(.+)`", line).group(1)
    assert command in again

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])  # `python` is this one
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env=subprocess_env(PATH=path), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert (run_dir / "config.json").is_file()
    (kept,) = [p for p in run_dir.parent.iterdir() if p.name.startswith("bare.orphaned-")]
    assert (kept / "logs" / "notes.txt").read_text() == "keep me\n"
