"""Reading `metrics.csv` back: the frame per step, and best and final values of a metric.

The CSV is wide (see utils.log.writers.csv_writer): a `step` column, then one column per
metric in first-seen order; a cell is empty where a metric was not logged at that step
(metrics that start mid-run, validation every N epochs) and may hold `nan` or `inf`. A step
written again after a resume counts once (its last row). pandas is imported on use.
"""

from dataclasses import dataclass
from pathlib import Path

from utils.log.writers.csv_writer import STEP_COLUMN


@dataclass(frozen=True)
class MetricSummary:
    """Best and final finite values of one metric in one run, with their steps."""

    best: float
    best_step: int
    final: float
    final_step: int
    points: int


def read_metrics(csv_path: Path | str) -> "pd.DataFrame":  # noqa: F821
    """The CSV as a float frame indexed by step; missing or empty file -> empty frame.

    Rows are sorted by step, a repeated step keeps its last row, non-numeric cells become NaN,
    and a half-written last line (after a crash) is tolerated.
    """
    import pandas as pd

    path = Path(csv_path)
    try:
        frame = pd.read_csv(path, on_bad_lines="skip")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(index=pd.Index([], name=STEP_COLUMN, dtype="int64"))
    if STEP_COLUMN not in frame.columns:
        raise ValueError(f"{path} has no {STEP_COLUMN!r} column: expected a metrics.csv written by the Logger")
    frame = frame.apply(pd.to_numeric, errors="coerce")
    frame = frame.dropna(subset=[STEP_COLUMN])
    frame[STEP_COLUMN] = frame[STEP_COLUMN].astype("int64")
    frame = frame.drop_duplicates(STEP_COLUMN, keep="last").set_index(STEP_COLUMN).sort_index()
    return frame.astype("float64")


def finite_series(frame: "pd.DataFrame", metric: str) -> "pd.Series":  # noqa: F821
    """The finite values of one metric, indexed by step (empty when it was never logged)."""
    import numpy as np

    column = frame[metric]
    return column[np.isfinite(column)]


def summarize_metric(frame: "pd.DataFrame", metric: str, mode: str) -> MetricSummary | None:  # noqa: F821
    """Best (`mode` 'max' or 'min') and last finite values of `metric`; None if it has none."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r}: use 'max' or 'min'")
    series = finite_series(frame, metric) if metric in frame.columns else None
    if series is None or series.empty:
        return None
    best_step = int(series.idxmax() if mode == "max" else series.idxmin())
    return MetricSummary(float(series[best_step]), best_step, float(series.iloc[-1]), int(series.index[-1]), len(series))
