"""How a trial ended: its state from its exit code and summary.json, its metric from its CSV."""

import csv
import math
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
    """(best, final) value of `metric` in a run's metrics.csv; (None, None) when it has none."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            values = [float(row[metric]) for row in csv.DictReader(handle) if row.get(metric)]
    except (OSError, ValueError):
        return None, None
    values = [value for value in values if math.isfinite(value)]
    if not values:
        return None, None
    return (max(values) if mode == "max" else min(values)), values[-1]
