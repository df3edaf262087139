"""Compare the runs of one experiment: best and final values per metric, and a shared plot.

Reads each run's logs/metrics.csv (pandas is imported on use, matplotlib only when plotting),
so the script starts quickly and never touches torch.
"""

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from utils.cli import add_name_option, require_name
from utils.errors import TemplateError
from utils.management import experiment_path, list_runs, require_run
from utils.names import sanitize_name
from visualization.plotting import MetricSummary, plot_run_comparison, read_metrics, summarize_metric

PROG = "03_compare.py"
DEFAULT_PREFIXES = ("val/", "test/")
EXAMPLES = """\
examples:
  # every run of an experiment, validation and test metrics
  python src/03_compare.py -e baseline
  # chosen runs and metrics ('accuracy' matches val/accuracy when that is the only match)
  python src/03_compare.py -e baseline -r lr1e-3 lr3e-3 -m val/loss accuracy
  # what counts as best: max for names containing 'acc', min otherwise, unless overridden
  python src/03_compare.py -e baseline -m val/f1 --mode val/f1=max
  # smoothed comparison plot, or no plot at all
  python src/03_compare.py -e baseline -m train/loss --smoothing 0.9
  python src/03_compare.py -e baseline --no-plot

Without -m: the val/ and test/ metrics, or every metric when no run has any of those.
Plots go to experiments/EXP/comparison_<metric>.png. Best values are marked with '*'.
Without -e: the experiment in $CURRENT_EXP (env.sh: setexp NAME).
Exit codes: 0 done, 2 bad input (one line on stderr).
"""


class UsageError(Exception):
    """A command-line mistake found after parsing (unknown metric, bad --mode)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2) instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (the experiment falls back to $CURRENT_EXP)."""
    parser = OneLineParser(
        prog=PROG,
        description="Table of runs with best and final metric values, plus a comparison plot.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    parser.add_argument("-r", "--runs", metavar="RUN", nargs="+", action="extend", help="runs (default: all)")
    parser.add_argument(
        "-m", "--metrics", metavar="METRIC", nargs="+", action="extend", help="metrics (default: val/, test/)"
    )
    parser.add_argument(
        "--mode", metavar="METRIC=max|min", action="append", default=[],
        help="what counts as best for a metric (repeatable); a bare max|min applies to all",
    )
    parser.add_argument("--smoothing", type=float, default=0.0, help="EMA weight in [0, 1) for the plot")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")
    return parser


def load_runs(experiment: str, runs: list[str] | None) -> dict[str, "pd.DataFrame"]:  # noqa: F821
    """Each chosen run's metrics (an empty frame for a run that has logged nothing yet)."""
    names = runs if runs else [info.run for info in list_runs(experiment)]
    return {name: read_metrics(require_run(experiment, name) / "logs" / "metrics.csv") for name in names}


def resolve_metric(name: str, available: list[str]) -> str:
    """An exact column name, or the one column whose last '/' part equals `name`."""
    if name in available:
        return name
    matches = [column for column in available if column.rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"metric {name!r} is ambiguous: matches {', '.join(matches)}; give the full name")
    raise UsageError(f"unknown metric {name!r}: available metrics are {', '.join(available)}")


def choose_metrics(requested: list[str] | None, available: list[str]) -> list[str]:
    """The metrics to show: the requested ones resolved, else val/ and test/, else all."""
    if requested:
        return list(dict.fromkeys(resolve_metric(name, available) for name in requested))
    preferred = [name for name in available if name.startswith(DEFAULT_PREFIXES)]
    return preferred or available


def parse_modes(entries: list[str], metrics: list[str]) -> dict[str, str]:
    """Best direction per metric: max if the name contains 'acc', else min, then overrides."""
    modes = {name: "max" if "acc" in name.lower() else "min" for name in metrics}
    for entry in entries:
        key, _, mode = entry.rpartition("=")
        if mode not in ("max", "min"):
            raise UsageError(f"--mode {entry!r}: expected METRIC=max, METRIC=min, max or min")
        targets = metrics if not key else [resolve_metric(key, metrics)]
        modes.update(dict.fromkeys(targets, mode))
    return modes


def format_value(value: float) -> str:
    return f"{value:.6g}"


def format_metric_table(metric: str, mode: str, frames: dict[str, "pd.DataFrame"]) -> str:  # noqa: F821
    """One block per metric: runs sorted best first, the best marked with '*'."""
    summaries: dict[str, MetricSummary | None] = {
        run: summarize_metric(frame, metric, mode) for run, frame in frames.items()
    }
    ranked = sorted((s.best if mode == "min" else -s.best, run) for run, s in summaries.items() if s is not None)
    order = [run for _, run in ranked] + sorted(run for run, s in summaries.items() if s is None)
    width = max(len("run"), *(len(run) for run in order))
    header = f"    {'run':<{width}}  {'best':>12}  {'at step':>8}  {'final':>12}  {'at step':>8}"
    lines = [f"{metric} ({mode} is best)", header]
    for run in order:
        summary = summaries[run]
        if summary is None:
            note = "no metrics yet" if frames[run].empty else "not logged"
            lines.append(f"    {run:<{width}}  {note}")
            continue
        mark = "*" if summary.best == summaries[order[0]].best else " "
        lines.append(
            f"  {mark} {run:<{width}}  {format_value(summary.best):>12}  {summary.best_step:>8}  "
            f"{format_value(summary.final):>12}  {summary.final_step:>8}"
        )
    return "\n".join(lines)


def write_plots(
    experiment: str, metrics: list[str], frames: dict[str, "pd.DataFrame"], smoothing: float  # noqa: F821
) -> list[Path]:
    """A comparison PNG per metric that at least one run has values for."""
    folder = experiment_path(experiment)
    csvs = {run: require_run(experiment, run) / "logs" / "metrics.csv" for run in frames}
    written = []
    for metric in metrics:
        if any(summarize_metric(frame, metric, "min") is not None for frame in frames.values()):
            out = folder / f"comparison_{sanitize_name(metric)}.png"
            written.append(plot_run_comparison(csvs, metric, out, smoothing=smoothing))
    return written


def compare(args: argparse.Namespace, experiment: str) -> None:
    """Load, choose metrics, print the tables, plot."""
    if not 0.0 <= args.smoothing < 1.0:
        raise UsageError(f"--smoothing {args.smoothing}: expected a value in [0, 1)")
    frames = load_runs(experiment, args.runs)
    if not frames:
        print(f"experiment {experiment} has no runs yet; create one with "
              f"`python src/01_initialize.py -e {experiment} -r RUN`")
        return
    available = list(dict.fromkeys(column for frame in frames.values() for column in frame.columns))
    if not available:
        print(f"runs of {experiment}: {', '.join(frames)}: no metrics yet")
        return
    metrics = choose_metrics(args.metrics, available)
    modes = parse_modes(args.mode, metrics)
    print("\n\n".join(format_metric_table(metric, modes[metric], frames) for metric in metrics))
    if not args.no_plot:
        for path in write_plots(experiment, metrics, frames, args.smoothing):
            print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    """Parse and compare; a usage error prints one line and returns 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        compare(args, require_name(args.experiment, "experiment"))
    except (TemplateError, UsageError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
