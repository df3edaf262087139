"""The state file: where it lives, atomic round trips, the lock, what a rerun does with each trial."""

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from sweeps.state import (
    SweepState,
    TrialRecord,
    changed_fields,
    config_hash,
    launch_reason,
    lock_sweep,
    read_state,
    state_file,
    sweep_dir,
    write_state,
)
from utils.errors import InvalidNameError, SweepBusyError, SweepSpecError


def make_state() -> SweepState:
    return SweepState("sw", "exp", {"name": "sw"}, {"name": "sw", "seed": 0}, [
        TrialRecord(0, "sw-000", {"optimizer.lr": 0.001}, "ab" * 32, "done", attempts=1, exit_code=0,
                    best=0.9, final=0.8),
        TrialRecord(1, "sw-001", {"optimizer.lr": 0.003}, state="running", attempts=2, failures=1, pid=1234),
    ])


def test_the_state_lives_under_the_experiment_and_round_trips(experiments_root: Path) -> None:
    state = make_state()
    write_state(state)
    assert state_file("exp", "sw") == experiments_root / "exp" / "sweeps" / "sw" / "state.json"
    assert read_state("exp", "sw") == state
    on_disk = json.loads(state_file("exp", "sw").read_text())
    assert on_disk["version"] == 1 and on_disk["trials"][1]["pid"] == 1234


def test_a_sweep_that_has_not_started_has_no_state(experiments_root: Path) -> None:
    assert read_state("exp", "sw") is None
    assert not any(experiments_root.iterdir())


def test_rewriting_the_state_leaves_no_temporary_file(experiments_root: Path) -> None:
    state = make_state()
    for state.trials[0].attempts in range(5):
        write_state(state)
    assert sorted(p.name for p in state_file("exp", "sw").parent.iterdir()) == ["state.json"]
    assert read_state("exp", "sw").trials[0].attempts == 4


def test_an_edited_state_file_is_a_one_line_error_naming_it(experiments_root: Path) -> None:
    write_state(make_state())
    path = state_file("exp", "sw")
    path.write_text(path.read_text()[:-20])
    with pytest.raises(SweepSpecError, match="state.json cannot be read"):
        read_state("exp", "sw")


def test_sweep_names_and_experiments_are_checked_before_any_path_is_used() -> None:
    with pytest.raises(InvalidNameError):
        sweep_dir("exp", "../x")
    with pytest.raises(InvalidNameError):
        sweep_dir("..", "sw")


def _try_lock(queue) -> None:
    try:
        with lock_sweep("exp", "sw"):
            queue.put("locked")
    except SweepBusyError as exc:
        queue.put(str(exc))


def test_a_second_driver_on_the_same_sweep_is_refused_naming_the_first(experiments_root: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with lock_sweep("exp", "sw"):
        process = context.Process(target=_try_lock, args=(queue,))
        process.start()
        process.join(30)
        message = queue.get(timeout=5)
    assert "being run by another driver" in message and f"pid {os.getpid()}" in message
    process = context.Process(target=_try_lock, args=(queue,))
    process.start()
    process.join(30)
    assert queue.get(timeout=5) == "locked", "the lock is free once its holder let go"


def test_changed_fields_names_every_differing_field() -> None:
    old = {"name": "sw", "set": {"a": 1}, "trials": None, "seed": 0}
    assert changed_fields(old, dict(old)) == []
    assert changed_fields(old, {**old, "set": {"a": 2}, "seed": 1}) == ["seed", "set"]


def test_the_config_hash_ignores_meta_and_sees_any_other_change() -> None:
    config = {"seed": 0, "model": {"hidden": 16}, "meta": {"created": "now"}}
    assert config_hash(config) == config_hash({**config, "meta": {"created": "later"}})
    assert config_hash(config) != config_hash({**config, "model": {"hidden": 32}})


@pytest.mark.parametrize("state, failures, reason", [
    ("pending", 0, "start"), ("interrupted", 0, "resume"), ("failed", 1, "retry"), ("failed", 2, None),
    ("done", 0, None), ("pruned", 0, None), ("running", 0, None),
])
def test_what_a_driver_does_with_each_trial(state: str, failures: int, reason: str | None) -> None:
    record = TrialRecord(0, "sw-000", {}, state=state, failures=failures)
    assert launch_reason(record, retries=1) == reason
