"""How a trial ended: its state from its exit code and summary.json, its metric from its CSV."""

import signal
from pathlib import Path
from typing import Any

# a worker stopped by SIGINT/SIGTERM: after saving (130/143), or before its handlers were installed
INTERRUPTED_CODES = (130, 143, -signal.SIGINT, -signal.SIGTERM)
PRUNED_PREFIX = "pruned"  # how an Optuna pruning callback's stop reason starts


def trial_outcome(code: int | None, summary: dict[str, Any] | None, stopping: bool) -> str:
    """done, pruned, interrupted or failed.

    `code` None: a worker of a previous driver, whose exit code nobody can know; it finished
    when it wrote summary.json, else it was stopped (its driver's death sent it SIGTERM).
    Anything that ends while the driver is stopping and did not finish was interrupted.
    """
    if summary is not None and code in (0, None):
        return "pruned" if str(summary.get("stopped_early") or "").startswith(PRUNED_PREFIX) else "done"
    if stopping or code is None or code in INTERRUPTED_CODES:
        return "interrupted"
    return "failed"


def read_metric(csv_path: Path, metric: str, mode: str) -> tuple[float | None, float | None]:
    """(best, final) value of `metric` in a run's metrics.csv; (None, None) when it has none.

    Read as `03_compare.py` reads runs (`utils.log.metrics_csv`: a step amended after a resume
    counts once, non-finite values are skipped); pandas is imported on the first call.
    """
    from utils.log.metrics_csv import read_metrics, summarize_metric

    try:
        summary = summarize_metric(read_metrics(csv_path), metric, mode)
    except (OSError, ValueError):
        return None, None
    return (None, None) if summary is None else (summary.best, summary.final)
