"""Evaluate a checkpoint of a trained run: `python src/05_evaluate.py -e EXP -r RUN [--checkpoint best] [--split test]`.

Also runs unchanged under `torchrun --nproc_per_node=N` (the sums are added over the ranks, as in
training). Exit codes: 0 done, 1 failed (e.g. the disk is full), 2 usage error (an unknown split, a
missing checkpoint, a run that never trained, a checkpoint that does not fit, a run in training).
"""

import argparse
import sys

from utils.cli import OneLineParser, add_name_option, require_name
from utils.errors import ConfigValueError, RunIOError, TemplateError
from utils.runs.evaluations import SPLITS
from utils.runs.run import Run

EPILOG = """examples:
  python src/05_evaluate.py -e example -r first                         # best.pt on the test split
  python src/05_evaluate.py -e example -r first --checkpoint last --split val
  python src/05_evaluate.py -e example -r first --checkpoint checkpoint_epoch_3.pt --set data.batch_size=256
  torchrun --standalone --nproc_per_node=2 src/05_evaluate.py -e example -r ddp

Each evaluation appends one JSON line to <run>/logs/evaluations.jsonl (checkpoint, epoch, step,
SHA-256, split, metrics, time) and writes the task's drawings to
<run>/visualizations/eval/<checkpoint>-<split>/. Checkpoints, metrics.csv and TensorBoard's files
are never changed; a run that is training right now is refused (exit 2).
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="05_evaluate.py",
        description="Evaluate a checkpoint of a trained run on one split, through the engine's own evaluation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    add_name_option(parser, "run")
    parser.add_argument(
        "--checkpoint", default="best", metavar="best|last|FILE",
        help="best (default), last, a file in the run's checkpoints/ or the path of a .pt file",
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="the split to evaluate (default: test)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key for this evaluation only, e.g. data.batch_size=256 (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The CLI; returns its exit code."""
    args = parse_args(argv)
    try:
        run = Run.require(require_name(args.experiment, "experiment"), require_name(args.run, "run"))
        from training.checkpoint_evaluation import evaluate_checkpoint  # imports torch: only once the run is known
        from training.inference import read_run_config
        from utils.helper_functions import select_device

        config = read_run_config(run, args.overrides)
        try:
            device = select_device(args.device)
        except ValueError as exc:
            raise ConfigValueError(f"--device: {exc}") from None
        result = evaluate_checkpoint(run, config, args.checkpoint, args.split, device)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunIOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_result(run, result)
    return 0


def print_result(run: Run, result: "CheckpointEvaluation") -> None:  # noqa: F821
    """Rank 0: the checkpoint, the metrics and where the record and the drawings went."""
    from utils.distributed_info import is_main_process
    from utils.runs.evaluations import evaluations_file

    if not is_main_process():
        return
    record = result.record
    lines = [f"run {run.name}: {record['checkpoint']} (epoch {record['epoch']}, step {record['step']}) "
             f"on {record['split']} in {result.wall_time:.1f} s"]
    lines += [f"  {name}: {value:.6f}" for name, value in record["metrics"].items()]
    lines.append(f"  recorded in: {evaluations_file(run)}")
    if result.drawings:
        lines.append(f"  drawings:    {result.drawings[0].parent}")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
