"""The table of a sweep's trials for `03_compare.py --sweep`: parameters, state, attempts, failures,
best and final metric.

One row per trial of the sweep's state file. A trial's best and final values come from the state
when the driver recorded them, else from the trial's metrics.csv, read as the driver reads it (a
trial still running, or one a killed driver never recorded, has values only its CSV holds).
pandas is imported on use.
"""

import json
import math
from pathlib import Path
from typing import Any

from sweeps.report import state_counts
from sweeps.results import read_metric
from sweeps.state import SweepState, TrialRecord
from utils.fileio import atomic_write_text
from utils.runs.run import Run

# what the state file says of each trial; failures count against 04_sweep.py --retries
RESULT_COLUMNS = ("state", "attempts", "failures", "best", "final")
MISSING = "-"  # a cell without a value: a pending trial, a metric not logged yet


def sweep_metric(state: SweepState) -> tuple[str, str]:
    """The sweep's metric and what counts as best for it ('max' or 'min'), from its spec."""
    return state.spec["metric"], state.spec["mode"]


def swept_parameters(state: SweepState) -> list[str]:
    """The swept config keys in the spec's order: the table's and the plot's parameter columns."""
    return list(state.spec["parameters"])


def sweep_title(state: SweepState) -> str:
    """'sweep NAME: METRIC (max is best)': the table's and the plot's title."""
    metric, mode = sweep_metric(state)
    return f"sweep {state.name}: {metric} ({mode} is best)"


def trial_values(experiment: str, record: TrialRecord, metric: str, mode: str) -> tuple[float | None, float | None]:
    """Best and final value of `metric` for one trial: as recorded in the state, else from its CSV."""
    if record.best is not None:
        return record.best, record.final
    return read_metric(Run.resolve(experiment, record.run).metrics_csv, metric, mode)


def cell_value(value: Any) -> Any:
    """A parameter value as a table cell: lists and dicts as JSON text (as `--set` spells them)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def sweep_frame(state: SweepState) -> "pd.DataFrame":  # noqa: F821
    """The tidy table: one row per trial with columns trial, number, each parameter, state,
    attempts, failures, best, final; best first per the sweep's mode, trials without a value last,
    ties by trial number."""
    import pandas as pd

    metric, mode = sweep_metric(state)
    parameters = swept_parameters(state)
    rows = []
    for record in sorted(state.trials, key=lambda record: record.number):
        best, final = trial_values(state.experiment, record, metric, mode)
        params = {key: cell_value(record.params.get(key)) for key in parameters}
        rows.append({"trial": record.run, "number": record.number, **params, "state": record.state,
                     "attempts": record.attempts, "failures": record.failures, "best": best, "final": final})
    frame = pd.DataFrame(rows, columns=["trial", "number", *parameters, *RESULT_COLUMNS])
    frame = frame.astype({"number": "int64", "attempts": "int64", "failures": "int64",
                          "best": "float64", "final": "float64"})
    ranked = frame.sort_values("best", ascending=mode == "min", na_position="last", kind="stable")
    return ranked.reset_index(drop=True)


def format_cell(value: Any) -> str:
    """Numbers to 6 significant digits (as the run table prints them); a missing value as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_sweep_table(state: SweepState, frame: "pd.DataFrame") -> str:  # noqa: F821
    """A title line, a header and one line per trial in the frame's order; the best marked '*'.

    Columns of numbers are right-aligned, text left-aligned.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    columns = ["trial", *swept_parameters(state), *RESULT_COLUMNS]
    cells = [[format_cell(value) for value in row] for row in frame[columns].itertuples(index=False)]
    widths = [max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(columns)]
    right = [is_numeric_dtype(frame[name]) and not is_bool_dtype(frame[name]) for name in columns]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    top = frame["best"].iloc[0] if len(frame) else math.nan
    lines = [f"{sweep_title(state)}, {len(frame)} trials: {state_counts(state.trials, len(state.trials))}",
             "    " + line(columns)]
    for best, row in zip(frame["best"], cells):
        lines.append(("  * " if best == top else "    ") + line(row))
    return "\n".join(lines)


def export_sweep_table(frame: "pd.DataFrame", path: Path) -> None:  # noqa: F821
    """Write the tidy table as CSV atomically: a reader sees the old file or the whole new one."""
    atomic_write_text(path, frame.to_csv(index=False))
