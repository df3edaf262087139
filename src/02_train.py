"""Train a run: `python src/02_train.py -e EXP -r RUN [--resume | --restart]`.

Also runs unchanged under `torchrun --nproc_per_node=N`. Exit codes: 0 done, 1 failed (e.g. the
disk is full, or `debug.nan_guard=stop` found a NaN; the reason is in the run's log.txt), 2 usage
error, 130/143 stopped by SIGINT/SIGTERM after saving `last.pt` (resume with --resume).
"""

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from training.signals import exit_on_late_sigterm, ignore_sigterm
from utils.cli import OneLineParser, add_name_option, require_name
from utils.errors import NonFiniteError, RunIOError, TemplateError
from utils.configs import apply_overrides, load_config_file
from utils.runs.run import Run

if TYPE_CHECKING:
    from training.callbacks import EpochCallback  # imports torch: only for type checkers

EPILOG = """examples:
  python src/02_train.py -e example -r first
  python src/02_train.py -e example -r first --resume
  python src/02_train.py -e example -r first --restart      # old outputs kept in restarted/
  CURRENT_EXP=example CURRENT_RUN=first python src/02_train.py --resume
  python src/02_train.py -e example -r quick --set training.epochs=3 --device cpu
  torchrun --standalone --nproc_per_node=2 src/02_train.py -e example -r ddp
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="02_train.py",
        description="Train a run created by 01_initialize.py, from its config.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    add_name_option(parser, "run")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint")
    start.add_argument(
        "--restart", action="store_true",
        help="start a run that has trained over; its outputs are moved to <run>/restarted/<time>/",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key for this session only (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, callbacks: Sequence["EpochCallback"] = ()) -> int:
    """The CLI; returns its exit code. `callbacks` (see `training.callbacks`) let a caller in the
    same process, such as a sweep, watch each evaluated epoch on rank 0 and stop the run."""
    args = parse_args(argv)
    try:
        args.experiment = require_name(args.experiment, "experiment")
        args.run = require_name(args.run, "run")
        run = Run.require(args.experiment, args.run)
        raw = apply_overrides(load_config_file(run.config_file), args.overrides)
        from training.run_config import parse_run_config  # imports torch: only once the run is known
        from training.session import run_session

        config = parse_run_config(raw, str(run.config_file))
        device = _device(args.device)
        result = run_session(run, config, device, args.resume, args.restart, callbacks)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RunIOError, NonFiniteError) as exc:
        if not getattr(exc, "logged_to_run", False):
            print(f"error: {exc}", file=sys.stderr)
        return 1
    if not result.already_finished:
        print_summary(result, args)
    return result.exit_code


def _device(name: str):
    """The torch device for --device, or a usage error naming the choices."""
    from utils.errors import ConfigValueError
    from utils.helper_functions import select_device  # imports torch: only once the run is known

    try:
        return select_device(name)
    except ValueError as exc:
        raise ConfigValueError(f"--device: {exc}") from None


def print_summary(result: "SessionResult", args: argparse.Namespace) -> None:  # noqa: F821
    """A short report on rank 0: where the run is, best and test metrics, wall time."""
    from utils.distributed_info import is_main_process

    if not is_main_process():
        return
    run = result.run
    state = "stopped by signal, resume with --resume" if result.exit_code else "finished"
    lines = [f"run {run.name} {state} in {result.wall_time:.1f} s", f"  folder:      {run.path}"]
    if result.best_metric is not None:
        lines.append(f"  best metric: {result.best_metric:.4f}")
    lines += [f"  {name}: {value:.4f}" for name, value in result.test_metrics.items()]
    lines += [
        f"  metrics:     {run.metrics_csv}",
        f"  plots:       {run.plots}",
        f"  TensorBoard: tensorboard --logdir {run.path.parent.parent} --host 127.0.0.1",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    exit_on_late_sigterm()
    code = main()
    ignore_sigterm()
    sys.exit(code)
