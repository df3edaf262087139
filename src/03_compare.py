"""Compare the runs of one experiment, or the trials of one sweep: best and final values, and plots.

Reads each run's logs/metrics.csv and a sweep's state file (pandas is imported on use, matplotlib
only when plotting). Which way is better for a metric is what the run's task declares: the task
named in the run's config.json is looked up in the registry (importing torch and the task), so
the direction has one home, the task's `metrics`, and holds for runs made before it was declared.
"""

import argparse
import sys
from pathlib import Path

from sweeps.state import SweepState, list_sweeps, read_state, sweep_dir
from utils.cli import OneLineParser, add_name_option, require_name
from utils.errors import RunIOError, TemplateError
from utils.management import experiment_path, list_runs
from utils.runs.run import Run
from utils.names import sanitize_name
from sweeps.table import (
    export_sweep_table, format_sweep_table, sweep_frame, sweep_metric, sweep_title, swept_parameters,
)
from training.run_directions import task_directions
from utils.log.metric_table import format_metric_table
from utils.log.metrics_csv import read_metrics, summarize_metric
from visualization.plotting import plot_run_comparison
from visualization.sweep_plots import plot_sweep

PROG = "03_compare.py"
DEFAULT_PREFIXES = ("val/", "test/")
# flags of the run comparison that a sweep's spec decides instead (its trials, metric and mode)
RUN_ONLY_FLAGS = {"runs": "-r/--runs", "metrics": "-m/--metrics", "mode": "--mode", "smoothing": "--smoothing"}
EXAMPLES = """\
examples:
  # every run of an experiment, validation and test metrics
  python src/03_compare.py -e baseline
  # chosen runs and metrics ('accuracy' matches val/accuracy when that is the only match)
  python src/03_compare.py -e baseline -r lr1e-3 lr3e-3 -m val/loss accuracy
  # what counts as best: the direction the runs' task declares for a metric, unless overridden
  python src/03_compare.py -e baseline -m val/f1 --mode val/f1=max
  # smoothed comparison plot, or no plot at all
  python src/03_compare.py -e baseline -m train/loss --smoothing 0.9
  python src/03_compare.py -e baseline --no-plot
  # the trials of a sweep (04_sweep.py): parameters, state, attempts, failures, best and final
  python src/03_compare.py -e baseline --sweep lr-hidden
  # ... and the same table as tidy CSV for pandas or a spreadsheet
  python src/03_compare.py -e baseline --sweep lr-hidden --export lr-hidden.csv --no-plot

Without -m: the val/ and test/ metrics, or every metric when no run has any of those.
Plots go to experiments/EXP/comparison_<metric>.png. Best values are marked with '*'; a metric
whose direction the task does not declare (and no --mode gives) is listed without a winner.
With --sweep: the metric and mode of the sweep's spec, trials sorted best first, and one plot
of the metric against each swept parameter in experiments/EXP/sweeps/NAME/NAME_<metric>.png.
Without -e: the experiment in $CURRENT_EXP (env.sh: setexp NAME).
Exit codes: 0 done, 2 bad input (one line on stderr).
"""


class UsageError(Exception):
    """A command-line mistake found after parsing (unknown metric, bad --mode)."""


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
    parser.add_argument("--smoothing", type=float, help="EMA weight in [0, 1) for the plot (default 0)")
    parser.add_argument("--no-plot", action="store_true", help="print the table only")
    parser.add_argument("--sweep", metavar="NAME", help="compare the trials of this sweep instead of runs")
    parser.add_argument("--export", metavar="FILE.csv", type=Path, help="with --sweep: write the table as CSV")
    return parser


def load_runs(experiment: str, runs: list[str] | None) -> dict[str, "pd.DataFrame"]:  # noqa: F821
    """Each chosen run's metrics (an empty frame for a run that has logged nothing yet)."""
    names = runs if runs else [info.run for info in list_runs(experiment)]
    return {name: read_metrics(Run.require(experiment, name).metrics_csv) for name in names}


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
    """The directions --mode gives: METRIC=max|min, or a bare max|min for every metric."""
    modes: dict[str, str] = {}
    for entry in entries:
        key, _, mode = entry.rpartition("=")
        if mode not in ("max", "min"):
            raise UsageError(f"--mode {entry!r}: expected METRIC=max, METRIC=min, max or min")
        targets = metrics if not key else [resolve_metric(key, metrics)]
        modes.update(dict.fromkeys(targets, mode))
    return modes


def write_plots(
    experiment: str, metrics: list[str], frames: dict[str, "pd.DataFrame"], smoothing: float  # noqa: F821
) -> list[Path]:
    """A comparison PNG per metric that at least one run has values for."""
    folder = experiment_path(experiment)
    csvs = {run: Run.require(experiment, run).metrics_csv for run in frames}
    written = []
    for metric in metrics:
        if any(summarize_metric(frame, metric, "min") is not None for frame in frames.values()):
            out = folder / f"comparison_{sanitize_name(metric)}.png"
            written.append(plot_run_comparison(csvs, metric, out, smoothing=smoothing))
    return written


def compare(args: argparse.Namespace, experiment: str) -> None:
    """Load, choose metrics, print the tables, plot."""
    if args.export is not None:
        raise UsageError("--export writes a sweep's table: add --sweep NAME")
    smoothing = 0.0 if args.smoothing is None else args.smoothing
    if not 0.0 <= smoothing < 1.0:
        raise UsageError(f"--smoothing {smoothing}: expected a value in [0, 1)")
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
    modes: dict[str, str | None] = dict(parse_modes(args.mode, metrics))
    undecided = [metric for metric in metrics if metric not in modes]
    if undecided:
        modes.update(task_directions(experiment, frames, undecided))
    print("\n\n".join(format_metric_table(metric, modes[metric], frames) for metric in metrics))
    if not args.no_plot:
        for path in write_plots(experiment, metrics, frames, smoothing):
            print(f"plot: {path}")


def reject_run_flags(args: argparse.Namespace) -> None:
    """A sweep's trials, metric and mode come from its spec: the flags that choose them for runs
    would be silently ignored, so they are an error instead."""
    given = [flag for dest, flag in RUN_ONLY_FLAGS.items() if getattr(args, dest)]
    if given:
        raise UsageError(
            f"--sweep does not combine with {', '.join(given)}: a sweep's trials, metric and mode come "
            "from its spec; drop them, or leave out --sweep to compare runs"
        )


def require_export_folder(path: Path | None) -> None:
    """Fail before any work when the export could not be written where asked."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--export {path} is a folder; give a file name such as {path / 'sweep.csv'}")
    if not path.parent.is_dir():
        raise UsageError(f"--export {path}: folder {path.parent} does not exist; create it or choose another path")


def require_sweep(experiment: str, name: str) -> SweepState:
    """The sweep's state, or an error listing the sweeps the experiment has."""
    state = read_state(experiment, name)
    if state is None:
        list_runs(experiment)  # an unknown experiment fails here, naming the existing ones
        known = ", ".join(list_sweeps(experiment)) or "none"
        raise UsageError(
            f"experiment {experiment} has no sweep {name!r}; its sweeps: {known} "
            f"(start one with `python src/04_sweep.py -e {experiment} -s SPEC`)"
        )
    return state


def write_sweep_plot(state: SweepState, frame: "pd.DataFrame") -> str:  # noqa: F821
    """Plot the metric against each parameter into the sweep's folder; the line to print."""
    metric, _ = sweep_metric(state)
    if not frame["best"].notna().any():
        return f"no plot: no trial has logged {metric} yet"
    out = sweep_dir(state.experiment, state.name) / f"{state.name}_{sanitize_name(metric)}.png"
    plot_sweep(frame, swept_parameters(state), metric, sweep_title(state), out)
    return f"plot: {out}"


def compare_sweep(args: argparse.Namespace, experiment: str) -> None:
    """Print the sweep's trials best first, export the table, plot."""
    reject_run_flags(args)
    require_export_folder(args.export)
    state = require_sweep(experiment, args.sweep)
    frame = sweep_frame(state)
    print(format_sweep_table(state, frame))
    if args.export is not None:
        export_sweep_table(frame, args.export)
        print(f"table: {args.export}")
    if not args.no_plot:
        print(write_sweep_plot(state, frame))


def main(argv: list[str] | None = None) -> int:
    """Parse and compare; a usage error prints one line and returns 2, the machine's refusal 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        experiment = require_name(args.experiment, "experiment")
        if args.sweep is None:
            compare(args, experiment)
        else:
            compare_sweep(args, experiment)
    except (TemplateError, UsageError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except RunIOError as error:  # the machine's refusal (the root is a file, a read-only disk)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
