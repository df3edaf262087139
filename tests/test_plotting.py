"""Training curves and run comparisons from metrics.csv files written by the real Logger."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import subprocess_env
from utils.logging import Logger
from utils.management import create_run
from visualization.plotting import (
    group_metrics,
    plot_run_comparison,
    plot_training_curves,
    read_metrics,
    smooth,
    summarize_metric,
)


def _log_run(run: str, steps: int = 120, rate: float = 30.0) -> Path:
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
    return _log_run("a")


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


def test_training_curves_one_png_per_group_skipping_empty_columns(csv_path, tmp_path):
    paths = plot_training_curves(csv_path, tmp_path / "plots")
    assert [p.name for p in paths] == ["loss.png", "lr.png", "accuracy.png"]  # no broken.png
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["accuracy.png", "loss.png", "lr.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (750, 420)
            assert np.asarray(image.convert("L")).std() > 10  # something is drawn


def test_training_curves_with_chosen_metrics_and_smoothing(csv_path, tmp_path):
    paths = plot_training_curves(csv_path, tmp_path, metrics=["val/accuracy", "train/loss"], smoothing=0.9)
    assert [p.name for p in paths] == ["accuracy.png", "loss.png"]
    with Image.open(paths[1]) as smoothed:
        raw_path = plot_training_curves(csv_path, tmp_path / "raw", metrics=["train/loss"])[0]
        with Image.open(raw_path) as raw:
            assert not np.array_equal(np.asarray(smoothed), np.asarray(raw))


def test_training_curves_unknown_metric_names_the_available_ones(csv_path, tmp_path):
    with pytest.raises(ValueError, match=r"val/f1 not in .*available: train/loss, lr, val/loss, val/accuracy"):
        plot_training_curves(csv_path, tmp_path, metrics=["val/f1"])


def test_training_curves_of_missing_or_header_only_csv_write_nothing(tmp_path):
    assert plot_training_curves(tmp_path / "none.csv", tmp_path / "out") == []
    header_only = tmp_path / "header.csv"
    header_only.write_text("step,train/loss\n")
    assert plot_training_curves(header_only, tmp_path / "out") == []
    assert list((tmp_path / "out").iterdir()) == []


def test_group_metrics_by_last_name_part_in_first_seen_order():
    groups = group_metrics(["train/loss", "lr", "val/loss", "val/accuracy", "debug/fc/mean", "debug/conv/mean"])
    assert groups == {
        "loss": ["train/loss", "val/loss"], "lr": ["lr"], "accuracy": ["val/accuracy"],
        "mean": ["debug/fc/mean", "debug/conv/mean"],
    }


def test_profiler_sections_share_one_plot():
    groups = group_metrics(["time/data", "train/loss", "time/forward", "time/forward/conv", "time"])
    assert groups == {"time": ["time/data", "time/forward", "time/forward/conv", "time"], "loss": ["train/loss"]}


def test_smooth_is_a_bias_corrected_moving_average():
    values = [1.0, 3.0, 2.0]
    w = 0.5
    expected, average = [], 0.0
    for n, value in enumerate(values, start=1):
        average = w * average + (1 - w) * value
        expected.append(average / (1 - w**n))
    assert smooth(values, w) == pytest.approx(expected)
    assert smooth(values, 0.0) == values
    assert smooth([4.0] * 5, 0.9) == pytest.approx([4.0] * 5)  # no pull towards zero at the start
    with pytest.raises(ValueError, match="smoothing=1.0 must be in"):
        smooth(values, 1.0)


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


def test_run_comparison_skips_runs_without_the_metric(csv_path, tmp_path):
    other = _log_run("b", steps=60, rate=10.0)
    silent = create_run("exp", "silent", {}) / "logs" / "metrics.csv"
    out = plot_run_comparison({"a": csv_path, "b": other, "silent": silent}, "val/accuracy", tmp_path / "cmp.png")
    with Image.open(out) as image:
        assert image.size == (750, 420)
    with pytest.raises(ValueError, match="no run among a, silent has values for metric 'val/f1'"):
        plot_run_comparison({"a": csv_path, "silent": silent}, "val/f1", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_plotting_reads_the_logger_format_with_pandas_the_same_way(csv_path):
    raw = pd.read_csv(csv_path)
    frame = read_metrics(csv_path)
    assert np.array_equal(raw["val/accuracy"].to_numpy(), frame["val/accuracy"].to_numpy(), equal_nan=True)


def test_import_loads_neither_pandas_nor_matplotlib():
    """Training scripts import this module at the top; the cost must come only when plotting."""
    code = "import sys, visualization.plotting; print([m for m in ('pandas', 'matplotlib') if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=subprocess_env(), check=True
    )
    assert result.stdout.strip() == "[]"
