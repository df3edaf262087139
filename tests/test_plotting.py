"""Training curves and run comparisons from metrics.csv files written by the real Logger."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import subprocess_env
from test_logging_metrics_csv import log_run
from utils.management import create_run
from visualization.plotting import group_metrics, plot_run_comparison, plot_training_curves, smooth


@pytest.fixture
def csv_path() -> Path:
    return log_run("a")


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


def test_training_curves_leave_out_the_skipped_namespaces(csv_path, tmp_path):
    """How a session leaves the debug/ stats (dozens of per-layer groups) to TensorBoard."""
    paths = plot_training_curves(csv_path, tmp_path, skip_namespaces=("val",))
    assert [p.name for p in paths] == ["loss.png", "lr.png"]  # loss.png draws train/loss alone


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


def test_run_comparison_skips_runs_without_the_metric(csv_path, tmp_path):
    other = log_run("b", steps=60, rate=10.0)
    silent = create_run("exp", "silent", {}) / "logs" / "metrics.csv"
    out = plot_run_comparison({"a": csv_path, "b": other, "silent": silent}, "val/accuracy", tmp_path / "cmp.png")
    with Image.open(out) as image:
        assert image.size == (750, 420)
    with pytest.raises(ValueError, match="no run among a, silent has values for metric 'val/f1'"):
        plot_run_comparison({"a": csv_path, "silent": silent}, "val/f1", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_import_loads_neither_pandas_nor_matplotlib():
    """Training scripts import this module at the top; the cost must come only when plotting."""
    code = "import sys, visualization.plotting; print([m for m in ('pandas', 'matplotlib') if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=subprocess_env(), check=True
    )
    assert result.stdout.strip() == "[]"
