"""04_sweep.py end to end with real processes: run, stop, kill, rerun, retry, refuse, report.

Trials are tiny (1-3 epochs of 5 steps on a 4/8-channel CNN); every process is bounded in time
and its whole process group killed in `finally`.
"""

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import prewarmed
from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from sweeps.spec import parse_spec
from sweeps.state import SweepState, TrialRecord, read_state, write_state
from sweeps.trial_runs import create_trial_run
from sweeps.trials import plan_grid
from train_support import wait_for
from utils.management import list_runs

TINY = {"training.draw_every": None, "logging.wandb": False, "logging.tensorboard": False, "data.batch_size": 256,
        "model.channels": [4, 8], "model.hidden": 16}


def write_spec(tmp_path: Path, **changes) -> Path:
    spec = {"name": "sw", "method": "grid", "parameters": {"optimizer.lr": [0.001, 0.003]},
            "metric": "val/accuracy", "mode": "max", "set": {**TINY, "training.epochs": 2}, **changes}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def sweep_command(spec: Path, *args: str) -> list[str]:
    return [sys.executable, str(SRC / "04_sweep.py"), "-e", "exp", "-s", str(spec), *args]


def run_sweep(spec: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_in_group(sweep_command(spec, *args), timeout=timeout, env=subprocess_env(), cwd=REPO_ROOT)


def start_sweep(spec: Path, tmp_path: Path, *args: str) -> subprocess.Popen:
    """The driver in the background, in its own process group, its output in files."""
    out = open(tmp_path / "driver.out", "w")
    return prewarmed.popen(sweep_command(spec, *args), stdout=out, stderr=subprocess.STDOUT, text=True,
                           env=subprocess_env(), cwd=REPO_ROOT, start_new_session=True)


def kill_group(process: subprocess.Popen, worker_pids: list[int] = ()) -> None:
    """Whatever is left of a driver and its workers (each worker leads its own group)."""
    for pid in [process.pid, *worker_pids]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait(30)


def trials() -> list[TrialRecord]:
    state = read_state("exp", "sw")
    return state.trials if state is not None else []


def has_last_checkpoint(root: Path, record: TrialRecord) -> bool:
    return (root / "exp" / record.run / "checkpoints" / "last.pt").is_file()


def wait_for_trials(driver: subprocess.Popen, condition, pids: list[int]) -> None:
    """Poll the state until `condition(trials)` holds, noting worker pids for the clean-up."""
    def ready() -> bool:
        records = trials()
        pids.extend(record.pid for record in records if record.pid)
        return condition(records)

    wait_for(ready, driver, timeout=150)


def folder_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tree(root: Path) -> dict[str, str]:
    return folder_hashes(root) | {str(p.relative_to(root)) + "/": "" for p in root.rglob("*") if p.is_dir()}


def assert_every_step_once(run_dir: Path) -> None:
    steps = list(pd.read_csv(run_dir / "logs" / "metrics.csv")["step"])
    summary = json.loads((run_dir / "logs" / "summary.json").read_text())
    assert steps == list(range(summary["global_step"])), f"{run_dir.name}: steps {steps}"


@pytest.mark.slow
def test_sigterm_stops_every_trial_and_a_rerun_finishes_the_rest_leaving_done_trials_untouched(
        experiments_root: Path, tmp_path: Path) -> None:
    # batches of 2: an epoch is 629 steps (~1.6 s), so a 3-epoch trial is still training when the signal lands
    spec = write_spec(tmp_path, parameters={"training.epochs": [1, 3], "optimizer.lr": [0.001, 0.003]},
                      set={**TINY, "data.batch_size": 2, "training.eval_every": 3})
    driver = start_sweep(spec, tmp_path, "--workers", "2")
    pids: list[int] = []
    try:
        def one_done_and_a_long_one_training(records: list[TrialRecord]) -> bool:
            long_ones = [r for r in records if r.params["training.epochs"] == 3 and r.state == "running"]
            return (any(r.state == "done" for r in records)
                    and any(has_last_checkpoint(experiments_root, r) for r in long_ones))

        wait_for_trials(driver, one_done_and_a_long_one_training, pids)
        driver.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        driver.send_signal(signal.SIGINT)  # a second signal while stopping changes nothing
        assert driver.wait(150) == 143
    finally:
        kill_group(driver, pids)
    output = (tmp_path / "driver.out").read_text()
    records = trials()
    assert "stopping: SIGTERM sent to" in output and "rerun the same command to continue" in output
    assert {r.state for r in records} <= {"done", "interrupted", "pending"}, output
    assert all(r.pid is None for r in records)
    interrupted = [r for r in records if r.state == "interrupted"]
    assert any(has_last_checkpoint(experiments_root, r) for r in interrupted), "a trial saved mid-training"
    first = next(r for r in records if r.state == "done")
    before = folder_hashes(experiments_root / "exp" / first.run)

    rerun = run_sweep(spec, "--workers", "2")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    records = trials()
    assert [r.state for r in records] == ["done"] * 4 and len(records) == 4
    assert next(r for r in records if r.run == first.run).attempts == 1
    assert all(r.attempts == 2 for r in records if r.run in {i.run for i in interrupted})
    assert folder_hashes(experiments_root / "exp" / first.run) == before, "a done trial is not touched"
    for record in records:
        assert_every_step_once(experiments_root / "exp" / record.run)
        assert record.best is not None and record.final is not None
    assert "[4/4]" in rerun.stdout
    assert ["TRIAL", "training.epochs", "optimizer.lr", "STATE", "ATTEMPTS", "FAILURES", "BEST", "FINAL"] in [
        line.split() for line in rerun.stdout.splitlines()]
    bests = [r.best for r in sorted(records, key=lambda r: rerun.stdout.rindex(r.run))]
    assert bests == sorted(bests, reverse=True), "the final table is sorted by the metric"
    assert [row.run for row in list_runs("exp")] == [f"sw-{n:03d}" for n in range(4)], "01_initialize --list"


@pytest.mark.slow
def test_a_sigkilled_driver_loses_nothing_a_rerun_cannot_finish(experiments_root: Path, tmp_path: Path) -> None:
    # batches of 1: an epoch is 1,257 steps (~3 s), so the workers are mid-epoch 2 when the driver dies
    spec = write_spec(tmp_path, set={**TINY, "data.batch_size": 1, "training.epochs": 2, "training.eval_every": 2})
    driver = start_sweep(spec, tmp_path, "--workers", "2")
    pids: list[int] = []
    try:
        wait_for_trials(driver, lambda records: len(records) == 2 and all(
            has_last_checkpoint(experiments_root, r) for r in records), pids)
        driver.kill()
        driver.wait(30)
        rerun = run_sweep(spec, "--workers", "2")
    finally:
        kill_group(driver, pids)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for record in trials():
        run_dir = experiments_root / "exp" / record.run
        assert record.state == "done" and record.attempts == 2
        assert "stopped by SIGTERM" in (run_dir / "logs" / "log.txt").read_text(), \
            "the driver's death made the worker save and stop"
        assert_every_step_once(run_dir)


@pytest.mark.slow
def test_a_failing_trial_is_retried_then_reported_with_the_end_of_its_log(experiments_root, tmp_path) -> None:
    # fp16 passes the config check but needs CUDA, which the pinned CPU build of torch lacks: the
    # trial exits 2 at its start (a split without training data is refused by the check now)
    spec = write_spec(tmp_path, parameters={"training.precision": ["fp32", "fp16"]})
    result = run_sweep(spec, "--workers", "2", "--retries", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    good, bad = trials()
    assert (good.state, good.attempts) == ("done", 1)
    assert (bad.state, bad.attempts, bad.failures, bad.exit_code) == ("failed", 2, 2, 2)
    assert "retrying (1 of 1 retries)" in result.stdout and "giving up after 2 failed attempts" in result.stdout
    report = result.stdout[result.stdout.index("sw-001 failed 2 times"):]
    assert "last lines of" in report and "training.precision='fp16' needs a CUDA device" in report


@pytest.mark.slow
def test_a_rerun_waits_for_a_worker_the_previous_driver_left_running_then_resumes_it(experiments_root, tmp_path):
    spec_path = write_spec(tmp_path, parameters={"optimizer.lr": [0.003]}, set={**TINY, "training.epochs": 1})
    spec = parse_spec(json.loads(spec_path.read_text()), str(spec_path))
    plan = plan_grid(spec)[0]
    digest = create_trial_run(spec, "exp", plan, "")
    console = experiments_root / "exp" / plan.run / "logs" / "console.txt"
    # stands in for a worker still saving after its driver died (same run name on its command line);
    # it lives until the test closes its stdin, however slowly the new driver starts
    old_worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); "
                                   "open(sys.argv[2], 'a').write('old worker exits\\n')", plan.run, str(console)],
                                  stdin=subprocess.PIPE, start_new_session=True)
    write_state(SweepState("sw", "exp", spec.raw, spec.fingerprint(), [TrialRecord(
        0, plan.run, plan.params, digest, state="running", attempts=1, pid=old_worker.pid)]))
    driver = start_sweep(spec_path, tmp_path)
    try:
        waiting = f"{plan.run} was started by a previous driver and still runs; waiting for it"
        wait_for(lambda: waiting in (tmp_path / "driver.out").read_text(), driver, timeout=150)
        assert trials()[0].attempts == 1 and not console.exists(), "not relaunched while the old one runs"
        old_worker.stdin.close()
        old_worker.wait(30)
        assert driver.wait(150) == 0, (tmp_path / "driver.out").read_text()
    finally:
        kill_group(old_worker)
        kill_group(driver)
    record, = trials()
    assert (record.state, record.attempts) == ("done", 2)
    text = console.read_text()
    assert text.index("old worker exits") < text.index("logging run"), "relaunched only once the old one ended"


# not in sorted order: a plan numbered in the spec's order of keys would number these differently
LR_HIDDEN = {"optimizer.lr": [0.001, 0.003], "model.hidden": [16, 32]}
ONE_EPOCH = {**TINY, "training.epochs": 1}
LR_HIDDEN_SET = {key: value for key, value in ONE_EPOCH.items() if key != "model.hidden"}


def done_record(spec, plan) -> TrialRecord:
    """A finished trial as a driver records it (its run created, not trained: nothing reads more)."""
    digest = create_trial_run(spec, "exp", plan, "")
    return TrialRecord(plan.number, plan.run, plan.params, digest, state="done", attempts=1, best=0.5, final=0.5)


def run_params(root: Path, run: str) -> tuple:
    config = json.loads((root / "exp" / run / "config.json").read_text())
    assert config["meta"]["sweep"]["params"] == {"optimizer.lr": config["optimizer"]["lr"],
                                                 "model.hidden": config["model"]["hidden"]}
    return config["optimizer"]["lr"], config["model"]["hidden"]


@pytest.mark.slow
def test_a_rerun_with_the_parameter_keys_reordered_runs_each_combination_exactly_once(experiments_root, tmp_path):
    spec_path = write_spec(tmp_path, parameters=LR_HIDDEN, set=LR_HIDDEN_SET)
    spec = parse_spec(json.loads(spec_path.read_text()), str(spec_path))
    # as a driver leaves a sweep stopped by SIGTERM after two trials: two done, two not started
    write_state(SweepState("sw", "exp", spec.raw, spec.fingerprint(), [done_record(spec, p) for p in plan_grid(spec)[:2]]))
    swapped = write_spec(tmp_path, parameters=dict(reversed(LR_HIDDEN.items())), set=LR_HIDDEN_SET)
    result = run_sweep(swapped, "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    records = trials()
    assert [(r.state, r.attempts) for r in records] == [("done", 1)] * 4
    every = [(0.001, 16), (0.001, 32), (0.003, 16), (0.003, 32)]
    assert sorted((r.params["optimizer.lr"], r.params["model.hidden"]) for r in records) == every
    assert sorted(run_params(experiments_root, r.run) for r in records) == every, "each combination ran once"
    assert all((experiments_root / "exp" / r.run / "logs" / "summary.json").is_file() for r in records[2:])


def test_a_state_whose_trials_the_spec_now_numbers_with_other_values_is_refused_naming_the_trial(
        experiments_root, tmp_path) -> None:
    spec_path = write_spec(tmp_path, parameters=LR_HIDDEN, set=LR_HIDDEN_SET)
    spec = parse_spec(json.loads(spec_path.read_text()), str(spec_path))
    first, second = plan_grid(spec)[:2]
    # trial 1 as a plan numbered in the spec's order of keys had it: (0.001, 32), not (0.003, 16)
    write_state(SweepState("sw", "exp", spec.raw, spec.fingerprint(), [
        TrialRecord(0, first.run, first.params, state="interrupted", attempts=1),
        TrialRecord(1, second.run, {"optimizer.lr": 0.001, "model.hidden": 32}, state="interrupted", attempts=1),
    ]))
    before = tree(experiments_root)
    for args in (["--dry-run"], []):
        result = run_sweep(spec_path, *args, timeout=60)
        assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and "trial sw-001 of sweep sw ran with" in result.stderr
    assert tree(experiments_root) == before, "nothing touched"


@pytest.mark.slow
def test_a_finished_trial_whose_run_folder_was_deleted_is_reported_and_runs_again(experiments_root, tmp_path):
    spec_path = write_spec(tmp_path, set=ONE_EPOCH)
    spec = parse_spec(json.loads(spec_path.read_text()), str(spec_path))
    kept, deleted = (done_record(spec, plan) for plan in plan_grid(spec))
    write_state(SweepState("sw", "exp", spec.raw, spec.fingerprint(), [kept, deleted]))
    shutil.rmtree(experiments_root / "exp" / deleted.run)
    before = folder_hashes(experiments_root / "exp" / kept.run)
    status = run_sweep(spec_path, "--status", timeout=60)
    assert "note: sw-001 is done in the state, but its run folder is gone; a rerun runs it again" in status.stdout
    dry = run_sweep(spec_path, "--dry-run", timeout=60)
    assert "sw-000  keep (done)" in dry.stdout and "sw-001  start again (done, but its run folder is gone)" in dry.stdout
    result = run_sweep(spec_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sw-001 was done, but its run folder {experiments_root / 'exp' / 'sw-001'} is gone; it runs again" \
        in result.stdout
    first, second = trials()
    assert (first.state, first.attempts, second.state, second.attempts) == ("done", 1, "done", 2)
    assert second.best is not None and second.best != 0.5, "its result is the new run's"
    assert_every_step_once(experiments_root / "exp" / deleted.run)
    assert folder_hashes(experiments_root / "exp" / kept.run) == before


def started_state(spec_path: Path) -> SweepState:
    """A state as a driver leaves it, written directly (no training needed to test the CLI on it)."""
    spec = parse_spec(json.loads(spec_path.read_text()), str(spec_path))
    state = SweepState("sw", "exp", spec.raw, spec.fingerprint(), [
        TrialRecord(0, "sw-000", {"optimizer.lr": 0.001}, state="interrupted", attempts=1),
        TrialRecord(1, "sw-001", {"optimizer.lr": 0.003}, state="failed", attempts=1, failures=1, exit_code=1),
    ])
    write_state(state)
    return state


def test_a_spec_changed_in_a_field_that_matters_is_refused_naming_the_fields(experiments_root, tmp_path) -> None:
    started_state(write_spec(tmp_path))
    before = tree(experiments_root)
    changed = write_spec(tmp_path, mode="min", set={**TINY, "training.epochs": 3})
    result = run_sweep(changed, "--workers", "2", timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "different mode, set" in result.stderr
    assert tree(experiments_root) == before, "nothing touched"
    only_slurm = write_spec(tmp_path, slurm={"partition": "other"})
    assert run_sweep(only_slurm, "--dry-run", timeout=60).returncode == 0, "slurm settings do not change results"


def test_status_and_dry_run_print_the_sweep_and_create_nothing(experiments_root, tmp_path) -> None:
    spec = write_spec(tmp_path)
    status = run_sweep(spec, "--status", timeout=60)
    assert status.returncode == 0 and "has not started" in status.stdout and "the sweeps of exp: none" in status.stdout
    dry = run_sweep(spec, "--dry-run", "--workers", "2", timeout=60)
    assert dry.returncode == 0 and "nothing is created" in dry.stdout
    assert "sw-000  start" in dry.stdout and "sw-001  start" in dry.stdout
    assert not any(experiments_root.iterdir())

    started_state(spec)
    before = tree(experiments_root)
    status = run_sweep(spec, "--status", timeout=60)
    header, first, second = (line.split() for line in status.stdout.splitlines()[1:4])
    assert header == ["TRIAL", "optimizer.lr", "STATE", "ATTEMPTS", "FAILURES", "BEST", "FINAL"]
    assert first == ["sw-000", "0.001", "interrupted", "1", "0", "-", "-"]
    assert second == ["sw-001", "0.003", "failed", "1", "1", "-", "-"]
    assert "1 failed, 1 interrupted" in status.stdout
    dry = run_sweep(spec, "--dry-run", "--retries", "0", timeout=60)
    assert "sw-000  resume" in dry.stdout and "sw-001  keep (failed)" in dry.stdout
    assert "sw-001  retry" in run_sweep(spec, "--dry-run", "--retries", "1", timeout=60).stdout
    other = run_sweep(write_spec(tmp_path, name="other"), "--status", timeout=60)
    assert "sweep other of exp has not started" in other.stdout and "the sweeps of exp: sw)" in other.stdout
    assert tree(experiments_root) == before


def test_an_optuna_dry_run_says_trials_are_chosen_as_results_arrive(experiments_root, tmp_path) -> None:
    spec = write_spec(tmp_path, method="optuna", trials=6, parameters={"optimizer.lr": {"low": 1e-4, "high": 1e-2}})
    dry = run_sweep(spec, "--dry-run", timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "Optuna chooses each trial's parameters as results arrive: 6 trials, 0 started so far" in dry.stdout
    assert not any(experiments_root.iterdir())


BAD_SPECS = {
    "missing file": (None, "does not exist"),
    "malformed": ('{"name": "sw",', "invalid JSON"),
    "unknown key": ({"metrc": "val/loss"}, "did you mean 'metric'?"),
    "unknown parameter key": ({"parameters": {"optimizer.lrr": [0.1]}}, "did you mean 'optimizer.lr'?"),
    "unknown set key": ({"set": {"training.epoch": 2}}, "did you mean 'training.epochs'?"),
    "empty grid": ({"parameters": {"optimizer.lr": []}}, "empty grid"),
    "random without trials": ({"method": "random"}, "needs 'trials'"),
    "optuna without trials": ({"method": "optuna"}, "needs 'trials'"),
    "unknown method": ({"method": "bayes"}, "method='bayes' has type str; expected 'grid' or 'random' or 'optuna'"),
    "slurm typo in a local sweep": ({"slurm": {"gpu_per_trial": 1}}, "did you mean 'slurm.gpus_per_trial'?"),
    "metric no trial logs": ({"metric": "val/f1"}, "choose one of val/loss, val/accuracy"),
}


@pytest.mark.parametrize("case", BAD_SPECS)
def test_bad_input_exits_2_with_one_line_and_creates_nothing(experiments_root, tmp_path, case: str) -> None:
    content, fragment = BAD_SPECS[case]
    spec = tmp_path / "spec.json"
    if isinstance(content, dict):
        spec = write_spec(tmp_path, **content)
    elif content is not None:
        spec.write_text(content)
    result = run_sweep(spec, "--workers", "2", timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and fragment in result.stderr
    assert not any(experiments_root.iterdir())


def limit_memory() -> None:
    """The child's address space capped at 2 GiB: a plan that grows without bound fails fast here
    (refusing the spec needs ~40 MB of it) instead of filling the machine until the timeout."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("changes", [
    {"method": "random", "trials": 10**12, "parameters": {"optimizer.lr": {"low": 1e-4, "high": 1e-2}}},
    {"method": "optuna", "trials": 10**12, "parameters": {"optimizer.lr": {"low": 1e-4, "high": 1e-2}}},
    {"parameters": {key: list(range(1, 101)) for key in ("model.hidden", "seed", "training.epochs")}},
])
def test_a_dry_run_of_a_sweep_too_large_to_run_is_refused_at_once(experiments_root, tmp_path, changes) -> None:
    command = sweep_command(write_spec(tmp_path, **changes), "--dry-run")
    result = run_in_group(command, timeout=60, env=subprocess_env(), cwd=REPO_ROOT, preexec_fn=limit_memory)
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "more than a sweep runs (at most 10000" in result.stderr
    assert not any(experiments_root.iterdir())


@pytest.mark.parametrize("args, fragment", [
    (["--executor", "cloud"], "invalid choice: 'cloud'"),
    (["--workers", "0"], "--workers"),
    (["--retries", "-1"], "--retries"),
    (["--status", "--dry-run"], "not allowed with"),
])
def test_bad_options_exit_2_with_one_line(experiments_root, tmp_path, args, fragment) -> None:
    result = run_sweep(write_spec(tmp_path), *args, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and fragment in result.stderr
    assert not any(experiments_root.iterdir())
