"""Create an experiment or a run: parse the command line, resolve the config, create the folder.

The work lives in utils.management and utils.runs; the config is checked by training.run_config. Listing and creating experiments
stay light (no torch, wandb, tensorboard or matplotlib); creating a run imports the task the
config names, with torch, to check every key against the task's own schema.
"""

import argparse
import shlex
import sys

from utils.cli import OneLineParser, add_name_option, name_or_env, require_name
from utils.configs import dump_config, parse_override
from utils.errors import RunIOError, TemplateError
from utils.management import (
    create_experiment,
    create_run,
    experiment_path,
    experiments_root,
    format_run_table,
    list_all,
    list_runs,
    require_new_run,
)
from utils.runs.new_run import DEFAULT_TEMPLATE, config_source, resolve_parent, resolve_template, with_meta

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
  # fork: a run from another run's config.json (its outputs stay where they are), changed
  python src/01_initialize.py -e baseline -r longer --from baseline/lr3e-3 --set training.epochs=30
  # print the complete config a template gives, creating nothing (`--set task=NAME` without -c:
  # no template, every key at the task's declared default; add -e/-r to create such a run)
  python src/01_initialize.py --show-config -c default
  # experiments, runs and creation times
  python src/01_initialize.py --list
  # names from the environment (env.sh: setexp NAME; setrun NAME; initrun)
  CURRENT_EXP=baseline CURRENT_RUN=r2 python src/01_initialize.py

--set values are parsed as JSON when they parse (1, 0.5, true, null, [1,2]), else kept as text;
--set may name any declared key, whether or not the template spells it out, and a section given
whole (--set 'training={"epochs": 3}') is merged into the section.
The resolved config is checked against the declared keys of the engine, the writers and the
task it names (`task`) before anything is created, and written complete. Runs go under $EXPERIMENTS_ROOT (default: <repo>/experiments), readable as your
umask allows; an existing run is never overwritten.
Exit codes: 0 done, 2 bad input or usage (one line on stderr, nothing created).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (names fall back to CURRENT_EXP / CURRENT_RUN)."""
    parser = OneLineParser(
        prog="01_initialize.py",
        description="Create an experiment, or a run with its resolved config.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    add_name_option(parser, "run")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "-c", "--config", metavar="NAME",
        help=f"template: config/NAME.json, or a path to a .json file (default: {DEFAULT_TEMPLATE}; "
        "none when --set task=NAME is given without -c)",
    )
    source.add_argument(
        "--from", dest="parent", metavar="EXP/RUN",
        help="fork: start from that run's config.json (meta.parent names it; no outputs are copied)",
    )
    parser.add_argument(
        "--set", dest="overrides", metavar="KEY.SUB=VALUE", action="append", default=[],
        help="override a config value (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list experiments and runs, then exit")
    parser.add_argument(
        "--show-config", action="store_true",
        help="print the complete config a run would get (without its meta block), then exit; creates nothing",
    )
    return parser


def chosen_template(args: argparse.Namespace) -> str | None:
    """`-c`, else none when an override names the task (its defaults fill the config), else the default."""
    if args.config is not None:
        return args.config
    names_task = any(parse_override(text)[0] == ["task"] for text in args.overrides)
    return None if names_task else DEFAULT_TEMPLATE


def resolve_config(args: argparse.Namespace) -> tuple[dict, str, str | None, dict]:
    """The config `-c`/`--from` and `--set` give, unchecked; where it came from (for errors); its
    template; and the meta keys of a fork (`parent`)."""
    if args.parent is not None:
        config, parent = resolve_parent(args.parent, args.overrides)
        source = f"{parent.config_file}{' with overrides' if args.overrides else ''}"
        return config, source, None, {"parent": parent.name}
    template = chosen_template(args)
    return resolve_template(template, args.overrides), config_source(template, args.overrides), template, {}


def show_config(args: argparse.Namespace) -> None:
    """Print the checked, complete config that `-c`/`--from` and `--set` give, as config.json would hold it."""
    config, source, _, _ = resolve_config(args)
    print(dump_config(check_config(config, source)), end="")


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
    from training.init_from import check_init_from
    from training.run_config import parse_run_config

    parsed = parse_run_config(config, source)
    check_init_from(parsed, source)
    return parsed.raw


def make_run(args: argparse.Namespace, experiment: str, run: str, command: str) -> None:
    """Create the run and say where it is and what comes next.

    Names, the existing run, the template, the overrides and the whole config are checked, in
    that order, before anything is created: a mistake leaves the disk as it was.
    """
    require_new_run(experiment, run)
    config, source, template, extra_meta = resolve_config(args)
    config = check_config(config, source)
    path = create_run(experiment, run, with_meta(config, experiment, run, template, args.overrides, command, extra_meta))
    print(f"created run {experiment}/{run} at {path}")
    origin = "no template: the task's defaults" if template is None else f"template {template}"
    if "parent" in extra_meta:
        origin = f"forked from {extra_meta['parent']}"
    print(f"config: {path / 'config.json'} ({origin}, {len(args.overrides)} overrides)")
    print(f"next: python src/02_train.py -e {experiment} -r {run}")


def make_experiment_or_run(args: argparse.Namespace, command: str) -> None:
    """Create the run when a run name is given or set, else the experiment."""
    experiment = require_name(args.experiment, "experiment")
    run = name_or_env(args.run, "run") if args.parent is None else require_name(args.run, "run")
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
        elif args.show_config:
            show_config(args)
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
