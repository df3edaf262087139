"""Optuna sweeps: parameter spaces, the study kept in its journal file across driver runs, telling results,
pruning a trial's run at an epoch boundary, and a sweep of 6 trials that survives a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import prewarmed
from conftest import REPO_ROOT, SRC, subprocess_env
from sweeps.optuna_search import OptunaSearch, PruningRule, trial_by_number
from sweeps.optuna_storage import open_storage, study_path
from sweeps.optuna_trial import PruningReporter, parse_args
from sweeps.spec import parse_spec
from sweeps.state import SweepState, TrialRecord, read_state, sweep_dir, write_state
from sweeps.trials import trial_run_name
from train_support import make_run, read_metrics
from utils.errors import SweepSpecError

TINY = {"training.draw_every": None, "training.epochs": 2, "logging.wandb": False, "logging.tensorboard": False, "data.batch_size": 128,
        "model.channels": [4, 8], "model.hidden": 16}
# lr 1e-6 leaves a trial at chance accuracy: clearly worse than the median of lr 0.01 trials.
# With seed 24, TPE's random start gives trials 0 and 1 lr 0.01 and at least two of trials 2-5
# lr 1e-6, wherever the driver is killed (its rerun reseeds the sampler with the trials so far).
PRUNABLE = {"name": "opt", "method": "optuna", "parameters": {"optimizer.lr": {"choices": [0.01, 1e-6]}},
            "metric": "val/accuracy", "mode": "max", "trials": 6, "seed": 24, "set": TINY}


def optuna_spec(**changes):
    return parse_spec({**PRUNABLE, **changes}, "spec.json")


def search_for(spec, experiment: str = "e") -> OptunaSearch:
    return OptunaSearch(spec, experiment, sweep_dir(experiment, spec.name))


def add_record(state: SweepState, plan) -> TrialRecord:
    record = TrialRecord(plan.number, plan.run, plan.params, optuna_number=plan.optuna_number)
    state.trials.append(record)
    return record


def empty_state(spec, experiment: str = "e") -> SweepState:
    return SweepState(spec.name, experiment, spec.raw, spec.fingerprint())


def load_study(spec, experiment: str = "e") -> optuna.Study:
    path = study_path(sweep_dir(experiment, spec.name))
    return optuna.load_study(study_name=spec.name, storage=open_storage(path))


def test_parameter_spaces_become_log_floats_ints_and_choices() -> None:
    spec = optuna_spec(parameters={
        "optimizer.lr": {"low": 1e-4, "high": 1e-1, "log": True}, "model.hidden": {"low": 8, "high": 32},
        "data.batch_size": [64, 128], "model.channels": {"choices": [[4, 8], [8, 16]]},
    }, set={})
    search = search_for(spec)
    plan = search.next_trial(empty_state(spec))
    lr, hidden, batch, channels = (plan.params[key] for key in spec.parameters)
    assert isinstance(lr, float) and 1e-4 <= lr <= 1e-1
    assert isinstance(hidden, int) and 8 <= hidden <= 32
    assert batch in (64, 128) and channels in ([4, 8], [8, 16])
    assert (plan.number, plan.optuna_number, plan.run) == (0, 0, "opt-000")
    distributions = load_study(spec).trials[0].distributions
    assert distributions["optimizer.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert distributions["model.hidden"] == IntDistribution(8, 32)
    assert distributions["data.batch_size"] == CategoricalDistribution([64, 128])
    assert distributions["model.channels"] == CategoricalDistribution(["[4, 8]", "[8, 16]"])


def test_a_rerun_continues_the_study_and_takes_up_what_its_killed_driver_left_half_done() -> None:
    spec = optuna_spec(trials=3)
    state = empty_state(spec)
    first = search_for(spec)
    told_late = add_record(state, first.next_trial(state))
    told_late.state, told_late.best = "done", 0.7  # saved in the state; the driver dies before telling
    write_state(state)
    orphan = first.next_trial(state)  # the driver dies before it saves this trial in its state
    rerun = search_for(spec)
    taken_up = add_record(state, rerun.next_trial(state))
    assert (taken_up.number, taken_up.optuna_number, taken_up.params) == (1, 1, orphan.params)
    add_record(state, rerun.next_trial(state))
    assert rerun.next_trial(state) is None
    trials = load_study(spec).trials
    assert [trial.number for trial in trials] == [0, 1, 2]
    assert (trials[0].state, trials[0].value) == (TrialState.COMPLETE, 0.7)


def test_the_study_is_a_journal_file_in_the_sweep_folder_that_trial_processes_are_pointed_to() -> None:
    spec = optuna_spec(trials=2)
    state = empty_state(spec)
    search = search_for(spec)
    record = add_record(state, search.next_trial(state))
    folder = sweep_dir("e", spec.name)
    assert isinstance(search.study._storage, optuna.storages.JournalStorage)
    assert (folder / "study.journal").is_file() and not (folder / "study.db").exists()
    command = search.trial_command(record, resume=False)
    assert command[command.index("--storage") + 1] == str(folder / "study.journal")


def test_an_older_sweeps_sqlite_study_is_copied_into_the_journal_once_and_the_sweep_goes_on() -> None:
    spec = optuna_spec(trials=3)
    folder = sweep_dir("e", spec.name)
    folder.mkdir(parents=True)
    sqlite = folder / "study.db"
    old = optuna.create_study(study_name=spec.name, storage=f"sqlite:///{sqlite}", direction="maximize")
    done = old.ask({"optimizer.lr": CategoricalDistribution([0.01, 1e-6])})
    done.report(0.5, step=1)
    old.tell(done, 0.8)
    running = old.ask({"optimizer.lr": CategoricalDistribution([0.01, 1e-6])})  # the old driver was killed
    old_bytes = sqlite.read_bytes()
    (folder / ".study.journal.12345.tmp").write_text("half a copy of a killed migration")
    state = empty_state(spec)
    state.trials.append(TrialRecord(0, trial_run_name(spec, 0), done.params, optuna_number=0, state="done", best=0.8))

    search = search_for(spec)
    assert len(search.notes) == 1 and "2 trials" in search.notes[0] and "study.db is kept" in search.notes[0]
    assert sqlite.read_bytes() == old_bytes
    trials = load_study(spec).trials
    assert [(t.number, t.state, t.value) for t in trials] == [(0, TrialState.COMPLETE, 0.8), (1, TrialState.RUNNING, None)]
    assert trials[0].intermediate_values == {1: 0.5} and trials[1].params == running.params
    taken_up = search.next_trial(state)  # the killed driver's trial goes on as the same Optuna trial
    assert (taken_up.number, taken_up.params) == (1, running.params)
    assert search_for(spec).notes == []  # copied once
    assert not list(folder.glob(".study.journal.*"))
    requeued = open_storage(f"sqlite:///{sqlite}")  # a job started before the copy still reports there
    assert len(optuna.load_study(study_name=spec.name, storage=requeued).trials) == 2


def test_finished_tells_the_best_value_pruned_or_failed_and_leaves_an_interrupted_trial_running() -> None:
    spec = optuna_spec(trials=5)
    state = empty_state(spec)
    search = search_for(spec)
    records = [add_record(state, search.next_trial(state)) for _ in range(5)]
    outcomes = [("done", 0.9), ("pruned", None), ("failed", None), ("done", None), ("interrupted", None)]
    for record, (outcome, best) in zip(records, outcomes):
        record.state, record.best = outcome, best
        search.finished(record)
    search.finished(records[0])  # told again by a driver killed before it saved: no error
    trials = load_study(spec).trials
    assert [trial.state for trial in trials] == [
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING]
    assert trials[0].value == 0.9


def test_the_pruning_callback_names_the_metrics_a_run_logs_when_the_spec_metric_is_not_one() -> None:
    args, train_args = parse_args(["--storage", "unused.journal", "--study", "s", "--trial-number", "0",
                                   "--metric", "val/acc", "--startup-trials", "1", "--first-epoch", "1",
                                   "--", "-e", "e", "-r", "r"])
    assert train_args == ["-e", "e", "-r", "r"]
    with pytest.raises(SweepSpecError, match=r"'val/acc' is not logged .*val/accuracy, val/loss"):
        PruningReporter(args)(1, {"val/loss": 2.0, "val/accuracy": 0.1})


def test_a_finished_trial_trained_again_reports_nothing_and_the_study_keeps_its_result() -> None:
    spec = optuna_spec(trials=2)
    state = empty_state(spec)
    search = search_for(spec)
    record = add_record(state, search.next_trial(state))
    record.state, record.best = "done", 0.9
    search.finished(record)
    args, _ = parse_args(["--storage", str(search.storage_path), "--study", spec.name, "--trial-number", str(record.optuna_number),
                          "--metric", "val/accuracy", "--startup-trials", "1", "--first-epoch", "1", "--"])
    reporter = PruningReporter(args)
    assert [reporter(epoch, {"val/accuracy": 0.1}) for epoch in (1, 2)] == [None, None]
    trial, = load_study(spec).trials
    assert (trial.state, trial.value, trial.intermediate_values) == (TrialState.COMPLETE, 0.9, {})


@pytest.mark.slow
def test_a_trial_worse_than_the_median_is_pruned_at_an_epoch_boundary_with_a_checkpoint() -> None:
    spec = optuna_spec(trials=3)  # one completed trial before pruning starts
    assert PruningRule.for_trials(3).startup_trials == 1 and PruningRule.for_trials(6).startup_trials == 2
    state = empty_state(spec)
    search = search_for(spec)
    good = add_record(state, search.next_trial(state))
    for epoch, accuracy in enumerate([0.5, 0.7, 0.8], start=1):
        trial_by_number(search.study, 0).report(accuracy, epoch)
    good.state, good.best = "done", 0.8
    search.finished(good)
    record = add_record(state, search.next_trial(state))
    run = make_run("e", record.run, "training.epochs=3", "logging.tensorboard=false", "data.batch_size=128",
                   "model.channels=[4, 8]", "model.hidden=16", "optimizer.lr=1e-6")
    command = [sys.executable, *search.trial_command(record, resume=False), "--device", "cpu"]
    done = prewarmed.run(command, timeout=120, env=subprocess_env(), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "logs" / "summary.json").read_text())
    assert summary["stopped_early"].startswith("pruned by optuna's median pruner at epoch 1 (val/accuracy=")
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert read_metrics(run)["epoch"].dropna().max() == 1
    assert list(load_study(spec).trials[1].intermediate_values) == [1]


def start_sweep(spec_path: Path) -> subprocess.Popen:
    command = [sys.executable, str(SRC / "04_sweep.py"), "-e", "e", "-s", str(spec_path), "--workers", "2"]
    return prewarmed.popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=subprocess_env(), cwd=REPO_ROOT, start_new_session=True)


def wait_until(condition, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended ({process.returncode}) first:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "the sweep did not get there in time"
        time.sleep(0.1)


def states_now() -> list[str]:
    try:
        state = read_state("e", "opt")
    except SweepSpecError:
        return []
    return [record.state for record in state.trials] if state is not None else []


def end_group(process: subprocess.Popen) -> None:
    """Kill what is left of a sweep's process group (its workers have sessions of their own)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.slow
def test_an_optuna_sweep_resumes_its_study_after_a_sigkill_and_prunes_bad_trials(tmp_path: Path) -> None:
    spec_path = tmp_path / "opt.json"
    spec_path.write_text(json.dumps(PRUNABLE))
    first = start_sweep(spec_path)
    try:
        wait_until(lambda: states_now().count("done") >= 2 and "running" in states_now(), first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end_group(first)
    root = Path(os.environ["EXPERIMENTS_ROOT"]) / "e"
    done_before = {r.run: (root / r.run / "logs" / "metrics.csv").stat().st_mtime_ns
                   for r in read_state("e", "opt").trials if r.state == "done"}
    rerun = start_sweep(spec_path)
    try:
        output, _ = rerun.communicate(timeout=120)
    finally:
        end_group(rerun)
    assert rerun.returncode == 0, output
    state = read_state("e", "opt")
    records = sorted(state.trials, key=lambda r: r.number)
    assert [(r.number, r.optuna_number) for r in records] == [(n, n) for n in range(6)]
    assert any(r.attempts == 2 for r in records), "no trial was interrupted by the kill and resumed"
    study = load_study(optuna_spec())
    expected = {"done": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
    assert [trial.state for trial in study.trials] == [expected[r.state] for r in records]
    assert any(r.state == "pruned" for r in records), output
    for record in records:  # every step exactly once, also in the trials the kill interrupted
        checkpoint = torch.load(root / record.run / "checkpoints" / "last.pt", weights_only=True)
        metrics = read_metrics(root / record.run)
        assert metrics["step"].tolist() == list(range(checkpoint["global_step"])), record.run
        if record.state == "pruned":  # stopped at an epoch boundary, before the last epoch, with a checkpoint
            assert checkpoint["epoch"] == int(pd.to_numeric(metrics["epoch"]).max()) < TINY["training.epochs"]
    for run, mtime in done_before.items():
        assert (root / run / "logs" / "metrics.csv").stat().st_mtime_ns == mtime
