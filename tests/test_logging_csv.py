"""metrics.csv written through the Logger, read back with pandas and the csv module."""

import csv
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import utils.logging as ulog
from utils.log.writers.csv_writer import CsvWriter
from utils.logging import Logger
from utils.management import run_path


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def csv_logger(run: str = "run") -> Logger:
    logger = Logger("exp", run)
    logger.initialize_csv()
    return logger


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_rows_are_wide_with_step_first_and_columns_in_first_seen_order():
    logger = csv_logger()
    logger.log({"train/loss": 1.5, "lr": 0.1}, step=0)
    logger.log({"train/loss": 1.25, "lr": 0.1}, step=1)
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert list(frame.columns) == ["step", "train/loss", "lr"]
    assert frame["step"].tolist() == [0, 1]
    assert frame["train/loss"].tolist() == [1.5, 1.25]


def test_several_calls_for_one_step_merge_into_one_row():
    logger = csv_logger()
    logger.log({"train/loss": 0.5}, step=3)
    logger.log({"val/loss": 0.75}, step=3)
    logger.log({"train/loss": 0.25}, step=4)
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert frame["step"].tolist() == [3, 4]
    assert frame.loc[0, "val/loss"] == 0.75 and frame.loc[0, "train/loss"] == 0.5
    assert math.isnan(frame.loc[1, "val/loss"])


def test_a_value_added_to_a_step_already_on_disk_amends_that_row():
    logger = csv_logger()
    logger.log({"train/loss": 0.5}, step=7)
    logger.flush()  # the row for step 7 is on disk now
    logger.log({"val/acc": 0.9}, step=7)
    logger.finish()
    rows = read_rows(logger.get_path("log") / "metrics.csv")
    assert rows == [{"step": "7", "train/loss": "0.5", "val/acc": "0.9"}]


def test_a_metric_first_seen_mid_run_adds_a_column_with_empty_earlier_cells():
    logger = csv_logger()
    for step in range(3):
        logger.log({"loss": float(step)}, step=step)
    logger.flush()
    logger.log({"loss": 3.0, "val/acc": 0.5}, step=3)
    logger.finish()
    rows = read_rows(logger.get_path("log") / "metrics.csv")
    assert [row["val/acc"] for row in rows] == ["", "", "", "0.5"]
    assert [row["loss"] for row in rows] == ["0.0", "1.0", "2.0", "3.0"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20))
def test_floats_round_trip_bit_exactly(values):
    path = run_path("exp", "rt") / "rt.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    writer = CsvWriter(path)
    for step, value in enumerate(values):
        writer.write_scalars(step, {"x": value})
    writer.close()
    read_back = [float(row["x"]) for row in read_rows(path)]
    assert read_back == values
    assert pd.read_csv(path)["x"].tolist() == values


def test_nan_and_infinities_are_kept():
    logger = csv_logger()
    logger.log({"a": float("nan"), "b": float("inf"), "c": -np.inf}, step=0)
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert math.isnan(frame.loc[0, "a"])
    assert frame.loc[0, "b"] == math.inf and frame.loc[0, "c"] == -math.inf


def test_numpy_and_tensor_values_are_written_as_numbers():
    import torch

    logger = csv_logger()
    values = {"np": np.float32(0.25), "i": np.int64(3), "t": torch.tensor(1.5), "ti": torch.tensor([7])}
    logger.log(values, step=0)
    logger.finish()
    rows = read_rows(logger.get_path("log") / "metrics.csv")
    assert rows == [{"step": "0", "np": "0.25", "i": "3", "t": "1.5", "ti": "7"}]


def test_metric_names_with_commas_and_quotes_survive():
    logger = csv_logger()
    logger.log({'acc, top-1 "strict"': 0.5}, step=0)
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert frame['acc, top-1 "strict"'].tolist() == [0.5]


@pytest.mark.parametrize("name", ["a\rb", "c\nd", "e\r\nf", 'g,"h"\r', "\r"])
def test_metric_names_with_line_breaks_read_back_exactly_after_appends_rewrites_and_a_resume(name):
    logger = csv_logger()
    logger.log({name: 0.5, "loss": 1.0}, step=0)
    logger.flush()
    logger.log({"loss": 2.0}, step=1)  # appended under the quoted header
    logger.log({"new": 3.0}, step=1)  # a new column: the header is written again
    logger.finish()
    resumed = Logger("exp", "run", resume_step=1)  # reads the header back, cuts step 1
    resumed.initialize_csv()
    resumed.log({name: 0.25, "loss": 4.0}, step=1)
    resumed.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert list(frame.columns) == ["step", name, "loss", "new"]
    assert frame["step"].tolist() == [0, 1]
    assert frame[name].tolist() == [0.5, 0.25] and frame["loss"].tolist() == [1.0, 4.0]


@pytest.mark.timeout(60)  # quadratic in the keys, as it was, this takes minutes (20,000 keys: 12 s)
def test_a_step_with_100000_metrics_is_written_in_linear_time():
    logger = csv_logger()
    metrics = {f"layer{index}/grad_norm": index / 8 for index in range(100_000)}
    logger.log(metrics, step=0)
    logger.log({"layer7/grad_norm": 1.5, "loss": 0.5}, step=1)
    logger.finish()
    path = logger.get_path("log") / "metrics.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        header, first, second = csv.reader(handle)
    assert header == ["step", *metrics, "loss"] and len(first) == len(second) == 100_002
    assert [float(cell) for cell in first[1:-1]] == list(metrics.values())
    # pandas takes ~10 s to build 100,000 columns: it reads a few of them here
    frame = pd.read_csv(path, usecols=["step", "layer0/grad_norm", "layer7/grad_norm", "layer99999/grad_norm", "loss"])
    assert frame["step"].tolist() == [0, 1] and frame["layer7/grad_norm"].tolist() == [7 / 8, 1.5]
    assert frame.loc[0, "layer99999/grad_norm"] == 99999 / 8 and frame["loss"].isna().tolist() == [True, False]


def test_rows_reach_the_disk_without_flush_within_seconds():
    logger = csv_logger()
    path = logger.get_path("log") / "metrics.csv"
    for step in range(5):
        logger.log({"loss": step / 10}, step=step)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.is_file() and len(read_rows(path)) == 5:
            break
        time.sleep(0.05)
    assert [row["loss"] for row in read_rows(path)] == ["0.0", "0.1", "0.2", "0.3", "0.4"]


def test_a_second_logger_without_resume_appends_and_learns_the_header():
    first = csv_logger()
    first.log({"a": 1.0, "b": 2.0}, step=0)
    first.finish()
    second = csv_logger()
    second.log({"b": 4.0, "a": 3.0}, step=1)
    second.finish()
    rows = read_rows(second.get_path("log") / "metrics.csv")
    assert rows == [{"step": "0", "a": "1.0", "b": "2.0"}, {"step": "1", "a": "3.0", "b": "4.0"}]


def test_resume_drops_rows_at_and_after_the_resume_step_and_continues():
    first = csv_logger()
    for step in range(10):
        first.log({"loss": float(step)}, step=step)
    first.finish()
    second = Logger("exp", "run", resume_step=6)
    second.initialize_csv()
    for step in range(6, 9):
        second.log({"loss": step + 0.5, "extra": 1}, step=step)
    second.finish()
    frame = pd.read_csv(second.get_path("log") / "metrics.csv")
    assert frame["step"].tolist() == list(range(9))
    assert frame["loss"].tolist() == [float(s) for s in range(6)] + [6.5, 7.5, 8.5]
    assert frame["extra"].isna().tolist() == [True] * 6 + [False] * 3
