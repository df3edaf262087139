"""Create an experiment or a run: parse the command line, resolve the config, create the folder.

The work lives in utils.initialization and utils.management. Listing and creating experiments
stay light (no torch, wandb, tensorboard or matplotlib); creating a run imports the task the
config names, with torch, to check every key against the task's own schema.
"""

import argparse
import shlex
import sys

from utils.cli import add_name_option, name_or_env, require_name
from utils.errors import RunIOError, TemplateError
from utils.initialization import DEFAULT_TEMPLATE, format_run_table, initialize_run
from utils.management import (
    create_experiment,
    experiment_path,
    experiments_root,
    list_all,
    list_runs,
)

EXAMPLES = """\
examples:
  # an experiment, then a run of it from config/default.json
  python src/01_initialize.py -e baseline
  python src/01_initialize.py -e baseline -r lr3e-3
  # change template values (an unknown key or a wrong type is an error)
  python src/01_initialize.py -e baseline -r small --set model.hidden=64 --set optimizer.lr=0.001
  python src/01_initialize.py -e baseline -r tagged --set logging.wandb_tags='["a","b"]'
  # another template: config/NAME.json, or a path to a .json file
  python src/01_initialize.py -e baseline -r big -c path/to/big.json
  # experiments, runs and creation times
  python src/01_initialize.py --list
  # names from the environment (env.sh: setexp NAME; setrun NAME; initrun)
  CURRENT_EXP=baseline CURRENT_RUN=r2 python src/01_initialize.py

--set values are parsed as JSON when they parse (1, 0.5, true, null, [1,2]), else kept as text.
The resolved config is checked against the declared keys of the engine, the writers and the
task it names (`task`) before anything is created, and written complete. Runs go under $EXPERIMENTS_ROOT (default: <repo>/experiments), readable as your
umask allows; an existing run is never overwritten.
Exit codes: 0 done, 2 bad input (one line on stderr, nothing created).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (names fall back to CURRENT_EXP / CURRENT_RUN)."""
    parser = argparse.ArgumentParser(
        prog="01_initialize.py",
        description="Create an experiment, or a run with its resolved config.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    add_name_option(parser, "run")
    parser.add_argument(
        "-c", "--config", metavar="NAME", default=DEFAULT_TEMPLATE,
        help="template: config/NAME.json, or a path to a .json file (default: %(default)s)",
    )
    parser.add_argument(
        "--set", dest="overrides", metavar="KEY.SUB=VALUE", action="append", default=[],
        help="override a config value (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list experiments and runs, then exit")
    return parser


def show_listing(experiment: str | None) -> None:
    """Print the table of runs (of one experiment when given)."""
    rows = list_runs(experiment) if experiment is not None else list_all()
    if rows:
        print(format_run_table(rows))
    else:
        print(f"nothing under {experiments_root()} yet; create a run with: "
              "python src/01_initialize.py -e EXP -r RUN")


def make_experiment(experiment: str) -> None:
    """Create the experiment folder, or say that it exists."""
    path = experiment_path(experiment)
    if path.is_dir():
        print(f"experiment {experiment} already exists at {path}")
        return
    create_experiment(experiment)
    print(f"created experiment {experiment} at {path}")
    print(f"next: python src/01_initialize.py -e {experiment} -r RUN")


def check_config(config: dict, source: str) -> dict:
    """The config checked against its task's schema, complete. Called once the names, the
    template and the overrides are known good, since it imports torch and the task (~2 s)."""
    from training.run_config import complete_config

    return complete_config(config, source)


def make_run(args: argparse.Namespace, experiment: str, run: str, command: str) -> None:
    """Create the run and say where it is and what comes next."""
    path = initialize_run(experiment, run, args.config, args.overrides, command, validate=check_config)
    print(f"created run {experiment}/{run} at {path}")
    overrides = len(args.overrides)
    print(f"config: {path / 'config.json'} (template {args.config}, {overrides} overrides)")
    print(f"next: python src/02_train.py -e {experiment} -r {run}")


def make_experiment_or_run(args: argparse.Namespace, command: str) -> None:
    """Create the run when a run name is given or set, else the experiment."""
    experiment = require_name(args.experiment, "experiment")
    run = name_or_env(args.run, "run")
    if run is None:
        make_experiment(experiment)
    else:
        make_run(args, experiment, run, command)


def main(argv: list[str] | None = None) -> int:
    """Parse, then list / create the experiment / create the run; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    try:
        if args.list:
            show_listing(args.experiment)
        else:
            make_experiment_or_run(args, command)
    except TemplateError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except RunIOError as exc:  # the machine's refusal (a read-only or full disk): not a usage error
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
