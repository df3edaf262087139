"""What a sweep prints: a line per finished trial, the table of trials, the logs of failed ones."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeps.local import CONSOLE_FILE
from sweeps.spec import SweepSpec
from sweeps.state import TRIAL_STATES, SweepState, TrialRecord, gone_trials, launch_reason
from sweeps.trials import plan_trials, total_trials
from utils.runs.run import Run

TAIL_LINES = 20


def format_value(value: Any) -> str:
    """A parameter or metric value as a table shows it: 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in params.items())


def progress_line(record: TrialRecord, finished: int, total: int, metric: str, seconds: float | None) -> str:
    """`[2/4] lr-hidden-001 done  val/accuracy best 0.963 final 0.959  optimizer.lr=0.001  12.3 s`"""
    scores = f"{metric} best {format_value(record.best)} final {format_value(record.final)}"
    took = "" if seconds is None else f"  {seconds:.1f} s"
    return f"[{finished}/{total}] {record.run} {record.state}  {scores}  {format_params(record.params)}{took}"


def sort_by_metric(trials: Sequence[TrialRecord], mode: str) -> list[TrialRecord]:
    """Best first (by each trial's best value), trials without a value last, then by number."""
    sign = -1 if mode == "max" else 1
    return sorted(trials, key=lambda r: (r.best is None, sign * r.best if r.best is not None else 0, r.number))


def format_trials(trials: Sequence[TrialRecord]) -> str:
    """One row per trial: run, one column per swept parameter, state, attempts, failures (which
    count against --retries), best, final."""
    keys = list(dict.fromkeys(key for record in trials for key in record.params))
    rows = [["TRIAL", *keys, "STATE", "ATTEMPTS", "FAILURES", "BEST", "FINAL"]]
    rows += [
        [record.run, *(format_value(record.params.get(key)) for key in keys), record.state,
         str(record.attempts), str(record.failures), format_value(record.best), format_value(record.final)]
        for record in trials
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def state_counts(trials: Sequence[TrialRecord], total: int) -> str:
    """`1 running, 2 done, 1 not started`: how far a sweep of `total` trials is, in the order of
    TRIAL_STATES (the driver, `--status` and `03_compare.py --sweep` all print it)."""
    counts = {name: sum(record.state == name for record in trials) for name in TRIAL_STATES}
    parts = [f"{count} {name}" for name, count in counts.items() if count]
    waiting = total - len(trials)
    return ", ".join(parts + ([f"{waiting} not started"] if waiting > 0 else [])) or "nothing started"


def log_tail(experiment: str, record: TrialRecord, lines: int = TAIL_LINES) -> str:
    """The last lines the trial printed (console.txt, else log.txt), indented, with the file's path."""
    run = Run.resolve(experiment, record.run)
    for path in (run.logs / CONSOLE_FILE, run.text_log):
        text = _read_text(path)
        if text.strip():
            tail = text.rstrip("\n").splitlines()[-lines:]
            return "\n".join([f"  last lines of {path}:", *(f"    {line}" for line in tail)])
    return f"  no log in {run.logs}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def plan_text(spec: SweepSpec, state: SweepState | None, retries: int) -> str:
    """What a run of the driver would do with each trial (for --dry-run); nothing is read but the
    state, and whether each finished trial's run folder still exists."""
    plans = plan_trials(spec)
    known = {record.number: record for record in state.trials} if state is not None else {}
    gone = {record.number for record in gone_trials(state)} if state is not None else set()
    if plans is None:
        rows = [(record.run, record.params, _action(record, retries, gone)) for record in known.values()]
        note = (f"Optuna chooses each trial's parameters as results arrive: {total_trials(spec)} trials, "
                f"{len(known)} started so far")
    else:
        rows = [(plan.run, plan.params, _action(known.get(plan.number), retries, gone)) for plan in plans]
        note = f"{spec.method} sweep of {len(plans)} trials"
    width = max((len(run) for run, _, _ in rows), default=0)
    lines = [f"  {run:<{width}}  {action:<8}  {format_params(params)}" for run, params, action in rows]
    return "\n".join([note, *lines])


def _action(record: TrialRecord | None, retries: int, gone: set[int]) -> str:
    if record is None:
        return "start"
    if record.number in gone:
        return f"start again ({record.state}, but its run folder is gone)"
    if record.state == "running":
        return "resume"  # once its worker (of a driver that died) has stopped
    reason = launch_reason(record, retries)
    return reason if reason is not None else f"keep ({record.state})"
