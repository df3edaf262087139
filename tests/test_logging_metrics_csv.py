"""The metrics.csv reader (utils.log.metrics_csv) on files written by the real Logger."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from utils.log.metrics_csv import read_metrics, summarize_metric
from utils.logging import Logger
from utils.management import create_run


def log_run(run: str, steps: int = 120, rate: float = 30.0) -> Path:
    """A run with train/loss and lr every step, val/* from step 40 every 20, a NaN, an inf
    and an all-NaN column, written by a real Logger; returns the metrics.csv path."""
    path = create_run("exp", run, {"seed": 0})
    logger = Logger("exp", run)
    logger.initialize_csv()
    for step in range(steps):
        loss = 2.0 * math.exp(-step / rate) + 0.01
        if step == 50:
            loss = float("nan")
        if step == 60:
            loss = float("inf")
        logger.log({"train/loss": loss, "lr": 0.1 * 0.98**step, "broken": float("nan")}, step)
        if step >= 40 and step % 20 == 0:
            logger.log({"val/loss": loss + 0.1, "val/accuracy": 1 - math.exp(-step / rate)}, step)
    logger.finish()
    return path / "logs" / "metrics.csv"


@pytest.fixture
def csv_path() -> Path:
    return log_run("a")


def test_read_metrics_indexes_by_step_and_keeps_mid_run_gaps(csv_path):
    frame = read_metrics(csv_path)
    assert list(frame.columns) == ["train/loss", "lr", "broken", "val/loss", "val/accuracy"]
    assert list(frame.index) == list(range(120))
    assert frame["val/accuracy"].loc[:39].isna().all()  # starts mid-run
    assert frame["val/accuracy"].notna().sum() == 4  # steps 40, 60, 80, 100
    assert math.isnan(frame.loc[50, "train/loss"]) and math.isinf(frame.loc[60, "train/loss"])
    assert frame.loc[3, "lr"] == 0.1 * 0.98**3  # floats round-trip exactly


def test_read_metrics_tolerates_missing_truncated_and_duplicate_rows(tmp_path):
    assert read_metrics(tmp_path / "missing.csv").empty
    (tmp_path / "empty.csv").write_text("")
    assert read_metrics(tmp_path / "empty.csv").empty
    crashed = tmp_path / "crashed.csv"
    crashed.write_text("step,loss,acc\n2,0.5,\n1,0.9,0.1\n2,0.4,0.2\n3,0.3")  # unsorted, repeated, cut off
    frame = read_metrics(crashed)
    assert list(frame.index) == [1, 2, 3]
    assert frame.loc[2].tolist() == [0.4, 0.2]  # the later row for step 2 wins
    assert frame.loc[3, "loss"] == 0.3 and math.isnan(frame.loc[3, "acc"])


def test_read_metrics_rejects_a_file_without_step_column(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(ValueError, match="has no 'step' column"):
        read_metrics(other)


def test_summarize_metric_ignores_non_finite_values(csv_path):
    frame = read_metrics(csv_path)
    low = summarize_metric(frame, "train/loss", "min")
    assert (low.best_step, low.final_step, low.points) == (119, 119, 118)  # NaN and inf left out
    assert low.best == pytest.approx(2.0 * math.exp(-119 / 30) + 0.01)
    high = summarize_metric(frame, "val/accuracy", "max")
    assert (high.best_step, high.final_step, high.points) == (100, 100, 4)
    assert summarize_metric(frame, "broken", "max") is None
    assert summarize_metric(frame, "absent", "max") is None
    with pytest.raises(ValueError, match="mode='best'"):
        summarize_metric(frame, "lr", "best")


def test_reader_reads_the_logger_format_as_pandas_does(csv_path):
    raw = pd.read_csv(csv_path)
    frame = read_metrics(csv_path)
    assert np.array_equal(raw["val/accuracy"].to_numpy(), frame["val/accuracy"].to_numpy(), equal_nan=True)
