"""The text table of one metric over several runs: best first, the winner marked.

03_compare.py prints it; the values come from utils.log.metrics_csv's summaries.
"""

from utils.log.metrics_csv import MetricSummary, summarize_metric


def format_value(value: float) -> str:
    return f"{value:.6g}"


def format_metric_table(metric: str, mode: str | None, frames: dict[str, "pd.DataFrame"]) -> str:  # noqa: F821
    """One block per metric: runs sorted best first, the best marked with '*'; with no known
    direction (mode None) the runs in their order, final values only, no winner."""
    summaries: dict[str, MetricSummary | None] = {  # without a mode only `final` is shown
        run: summarize_metric(frame, metric, mode or "min") for run, frame in frames.items()
    }
    logged = [run for run, s in summaries.items() if s is not None]
    if mode is not None:  # best first
        logged.sort(key=lambda run: (summaries[run].best if mode == "min" else -summaries[run].best, run))
    order = logged + sorted(run for run, s in summaries.items() if s is None)
    width = max(len("run"), *(len(run) for run in order))
    header = f"    {'run':<{width}}  {'best':>12}  {'at step':>8}  {'final':>12}  {'at step':>8}"
    title = f"{metric} ({mode} is best)" if mode else (
        f"{metric} (direction unknown: no winner; --mode {metric}=max or =min chooses one)"
    )
    lines = [title, header]
    for run in order:
        summary = summaries[run]
        if summary is None:
            note = "no metrics yet" if frames[run].empty else "not logged"
            lines.append(f"    {run:<{width}}  {note}")
            continue
        best, best_step = (format_value(summary.best), summary.best_step) if mode else ("-", "-")
        mark = "*" if mode and summary.best == summaries[order[0]].best else " "
        lines.append(
            f"  {mark} {run:<{width}}  {best:>12}  {best_step:>8}  "
            f"{format_value(summary.final):>12}  {summary.final_step:>8}"
        )
    return "\n".join(lines)
