"""Run a sweep: many trials (runs) of one config, locally or on SLURM; rerun the command to continue.

The work lives in `src/sweeps/`: the spec is read and every trial config checked before
anything is created, then the driver launches the trials and keeps the state file.
"""

import argparse
import shlex
import sys
from pathlib import Path

from sweeps.driver import EXECUTORS, DriverOptions, build_executor, run_sweep
from sweeps.report import format_trials, plan_text, state_counts
from sweeps.spec import SweepSpec, load_spec
from sweeps.state import changed_fields, check_unchanged, gone_trials, list_sweeps, read_state, state_file
from sweeps.trial_runs import check_sweep
from sweeps.trials import total_trials
from utils.cli import OneLineParser, add_name_option, int_at_least, require_name
from utils.errors import RunIOError, TemplateError

EXAMPLES = """\
examples:
  python src/04_sweep.py -e digits -s config/sweeps/example.json --workers 2
  python src/04_sweep.py -e digits -s config/sweeps/example.json --dry-run   # what would run
  python src/04_sweep.py -e digits -s config/sweeps/example.json --status    # how far it is
  python src/04_sweep.py -e digits -s config/sweeps/example.json --workers 2 # again: continues

Each trial is a run <EXP>/<name>-<NNN>; the state is in <EXP>/sweeps/<name>/state.json.
Rerunning the same command continues the sweep: finished trials are kept, interrupted ones
resume from their checkpoints, failed ones are retried up to --retries times.
Exit codes: 0 every trial finished, 1 some failed, 2 bad input (one line, nothing created),
130/143 stopped by SIGINT/SIGTERM (the trials saved; rerun to continue).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="04_sweep.py", description="Run or continue a sweep of trials from a JSON spec.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    parser.add_argument("-s", "--spec", required=True, metavar="SPEC", help="the sweep spec, a JSON file")
    parser.add_argument("--workers", type=int_at_least(1), default=1, metavar="N", help="trials at once: processes here, or jobs queued on SLURM (default: 1)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where trials run (default: local)")
    parser.add_argument("--retries", type=int_at_least(0), default=1, metavar="R",
                        help="relaunches of a failed trial (default: 1)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--dry-run", action="store_true", help="check the spec, print what would run, create nothing")
    only.add_argument("--status", action="store_true", help="print the sweep's state, run nothing")
    return parser


def show_status(spec: SweepSpec, experiment: str) -> None:
    """The state table as the state file has it; nothing runs, nothing is created."""
    state = read_state(experiment, spec.name)
    if state is None:
        started = ", ".join(list_sweeps(experiment)) or "none"
        print(f"sweep {spec.name} of {experiment} has not started ({state_file(experiment, spec.name)} does not "
              f"exist; the sweeps of {experiment}: {started}); start it with: "
              f"python src/04_sweep.py -e {experiment} -s {spec.source}")
        return
    print(f"sweep {spec.name} of {experiment} ({spec.method}): {state_counts(state.trials, total_trials(spec))}; "
          f"{spec.metric} ({spec.mode})")
    changed = changed_fields(state.fingerprint, spec.fingerprint())
    if changed:
        print(f"note: {spec.source} differs from the spec the sweep started with in {', '.join(changed)}")
    for record in gone_trials(state):
        print(f"note: {record.run} is {record.state} in the state, but its run folder is gone; a rerun runs it again")
    if state.trials:
        print(format_trials(state.trials))


def check_before_creating(spec: SweepSpec, experiment: str) -> None:
    """Everything that can be wrong with the spec, found before anything is created or touched:
    a spec changed since the sweep started, any trial's config, the metric."""
    state = read_state(experiment, spec.name)
    if state is not None:
        check_unchanged(state, spec.fingerprint(), spec.source)
    check_sweep(spec, experiment, state)


def show_dry_run(spec: SweepSpec, experiment: str, args: argparse.Namespace) -> None:
    print(f"dry run: sweep {spec.name} of {experiment}, {args.workers} at a time ({args.executor}); "
          "nothing is created")
    print(plan_text(spec, read_state(experiment, spec.name), args.retries))


def main(argv: list[str] | None = None) -> int:
    """Parse; then print the status, or check everything and print the plan or run the sweep."""
    args = build_parser().parse_args(argv)
    command = shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    try:
        experiment = require_name(args.experiment, "experiment")
        spec = load_spec(Path(args.spec))
        if args.status:
            show_status(spec, experiment)
            return 0
        check_before_creating(spec, experiment)
        executor = build_executor(args.executor, spec, experiment, args.workers)
        if args.dry_run:
            show_dry_run(spec, experiment, args)
            return 0
        return run_sweep(spec, experiment, executor, DriverOptions(args.workers, args.retries, command))
    except TemplateError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except RunIOError as exc:  # the machine's refusal (the root is a file, a read-only disk)
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
