"""How a trial ended: the state from its exit code and summary, the metric from its CSV."""

import signal
from pathlib import Path

import pytest

from sweeps.results import read_metric, trial_outcome

FINISHED = {"epochs": 2, "stopped_early": None}


@pytest.mark.parametrize("code, summary, stopping, outcome", [
    (0, FINISHED, False, "done"),
    (0, {"epochs": 1, "stopped_early": "pruned at epoch 1"}, False, "pruned"),
    (0, {"epochs": 1, "stopped_early": "early stopping: no improvement"}, False, "done"),
    (None, FINISHED, False, "done"),            # a previous driver's worker that finished
    (None, None, False, "interrupted"),         # ... that its driver's death stopped
    (143, None, False, "interrupted"),
    (130, None, True, "interrupted"),
    (-signal.SIGTERM, None, True, "interrupted"),  # signalled before its handlers were installed
    (-signal.SIGTERM, None, False, "interrupted"),
    (-signal.SIGKILL, None, True, "interrupted"),   # killed by the driver after the stop timeout
    (-signal.SIGKILL, None, False, "failed"),       # e.g. the OOM killer
    (1, None, False, "failed"),
    (2, None, False, "failed"),
    (0, None, False, "failed"),                 # exit 0 without summary.json did not finish
])
def test_the_outcome_of_a_trial(code, summary, stopping, outcome) -> None:
    assert trial_outcome(code, summary, stopping) == outcome


def test_best_and_final_come_from_the_rows_that_hold_the_metric(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,train/loss,val/accuracy\n0,2.3,\n9,1.9,0.5\n10,1.7,\n19,1.2,0.8\n29,1.1,0.7\n")
    assert read_metric(path, "val/accuracy", "max") == (0.8, 0.7)
    assert read_metric(path, "val/accuracy", "min") == (0.5, 0.7)
    assert read_metric(path, "val/loss", "min") == (None, None)
    assert read_metric(tmp_path / "missing.csv", "val/accuracy", "max") == (None, None)
