"""Resume with `resume_step=T`: every step exactly once in CSV and TensorBoard, W&B keeps its id."""

import itertools

import pandas as pd
import pytest
from test_logging_tensorboard import read_events, scalar_steps
from test_logging_wandb import read_wandb_records, wandb_files, wandb_history

import utils.logging as ulog
from utils.logging import Logger


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def full_logger(resume_step: int | None = None) -> Logger:
    logger = Logger("exp", "resumed", resume_step=resume_step)
    logger.initialize_csv()
    logger.initialize_tensorboard()
    logger.initialize_wandb("template-tests")
    return logger


def session_steps(first: range, second: range) -> list[tuple[int, float]]:
    """(step, session) pairs a reader must see: the second session wins from its first step on."""
    return [(s, 1.0) for s in first if s < second.start] + [(s, 2.0) for s in second]


def test_resume_shows_each_step_once_everywhere_and_continues_the_wandb_run():
    first = full_logger()
    first_steps, second_steps = range(0, 20), range(12, 25)
    for step in first_steps:
        first.log({"session": 1.0, "loss": step / 100}, step=step)
    first.finish()
    second = full_logger(resume_step=second_steps.start)
    assert second.last_step == second_steps.start - 1
    for step in second_steps:
        second.log({"session": 2.0, "loss": step / 100}, step=step)
    second.finish()
    expected = session_steps(first_steps, second_steps)
    log_dir = second.get_path("log")

    frame = pd.read_csv(log_dir / "metrics.csv")
    assert list(zip(frame["step"], frame["session"])) == expected

    events = read_events(log_dir)
    assert scalar_steps(events, "session") == expected
    assert [step for step, _ in scalar_steps(events, "loss")] == list(range(25))

    run_id = first.state_dict()["wandb_run_id"]
    assert second.state_dict()["wandb_run_id"] == run_id
    histories = {}  # session -> its W&B history, each session's file told by what it holds
    for path in wandb_files(log_dir, run_id):
        (run_record,) = [r.run for r in read_wandb_records(path) if r.WhichOneof("record_type") == "run"]
        assert run_record.run_id == run_id
        history = [(row["_step"], row["session"]) for row in wandb_history(path)]
        histories[history[0][1]] = history
    assert histories == {1: [(s, 1) for s in first_steps], 2: [(s, 2) for s in second_steps]}

    log_lines = (log_dir / "log.txt").read_text().splitlines()
    assert sum("logging run exp/resumed" in line for line in log_lines) == 2
    assert any("(resuming at step 12)" in line for line in log_lines)


def test_after_resume_values_for_the_last_kept_step_join_its_row():
    first = Logger("exp", "amend")
    first.initialize_csv()
    for step in range(5):
        first.log({"train/loss": step / 10}, step=step)
    first.finish()
    second = Logger("exp", "amend", resume_step=3)  # e.g. epoch metrics of step 2 still to come
    second.initialize_csv()
    second.log({"train/epoch_loss": 0.125}, step=2)
    second.log({"train/loss": 0.375}, step=3)
    second.finish()
    rows = pd.read_csv(second.get_path("log") / "metrics.csv").to_dict("records")
    assert [row["step"] for row in rows] == [0, 1, 2, 3]
    assert rows[2] == {"step": 2, "train/loss": 0.2, "train/epoch_loss": 0.125}
    assert rows[3]["train/loss"] == 0.375


def test_resume_at_step_zero_keeps_nothing_of_the_old_csv():
    first = Logger("exp", "zero")
    first.initialize_csv()
    first.log({"loss": 1.0}, step=0)
    first.finish()
    second = Logger("exp", "zero", resume_step=0)
    second.initialize_csv()
    second.log({"loss": 2.0}, step=0)
    second.finish()
    frame = pd.read_csv(second.get_path("log") / "metrics.csv")
    assert frame.to_dict("records") == [{"step": 0, "loss": 2.0}]


def test_the_sessions_event_files_sort_in_session_order_past_a_tenth_writer_in_the_process(monkeypatch):
    """TensorBoard reads a folder's event files in name order: two sessions in one process and one
    second must sort as they were written even when the writer number gains a digit (9 -> 10)."""
    from types import SimpleNamespace

    from utils.log.writers import tensorboard_writer

    monkeypatch.setattr(tensorboard_writer, "_FILE_NUMBERS", itertools.count(9))
    monkeypatch.setattr(tensorboard_writer, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))  # one second
    sessions = []
    for resume_step, steps, value in ((None, range(0, 6), 1.0), (3, range(3, 8), 2.0)):
        logger = Logger("exp", "tb-order", resume_step=resume_step)
        logger.initialize_tensorboard()
        for step in steps:
            logger.log({"session": value}, step=step)
        logger.finish()
        sessions.append(logger)
    events = read_events(sessions[-1].get_path("log"))
    assert scalar_steps(events, "session") == session_steps(range(0, 6), range(3, 8))
