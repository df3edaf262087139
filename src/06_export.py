"""Export a trained run's model: `python src/06_export.py -e EXP -r RUN --format onnx`.

Loads the checkpoint with `training.inference.load_trained`, exports the model on the CPU, checks
the artefact against the eager model on the task's example batch (`training.export`), and only
then writes `<run>/exports/<checkpoint>.<ext>` atomically. Exit codes: 0 written; 1 the model
cannot be exported, or its export is further from eager than the format's tolerance (one line
naming the format and the reason, nothing written); 2 bad input or usage (one line).
"""

import argparse
import sys
import time

from utils.cli import OneLineParser, add_name_option, require_name
from utils.errors import ExportError, RunIOError, TemplateError
from utils.runs.exports import check_out_path, default_export_path
from utils.runs.new_run import ensure_run
from utils.runs.run import Run

FORMATS = ("safetensors", "pt2", "onnx")  # training.export.EXPORTERS, named here to keep --help light; each is
# also its file's extension

EPILOG = """examples:
  python src/06_export.py -e example -r first --format onnx              # <run>/exports/best.onnx
  python src/06_export.py -e example -r first --format pt2 --checkpoint last
  python src/06_export.py -e example -r first --format safetensors --out experiments/example/first.safetensors

formats:
  safetensors  the weights (state_dict), checked by loading them into a fresh model of the task
  pt2          a torch.export ExportedProgram with a dynamic batch dimension (torch.export.load)
  onnx         ONNX through the dynamo exporter, checked in onnxruntime

The check runs the task's example batch (Task.example_inputs(), by default 16 test samples, tiled
to at least 3) through the artefact and the eager model, after tracing on 2 samples, and prints the
largest absolute difference; above the format's tolerance (safetensors exact, pt2 1e-6 and onnx
1e-4 of the outputs' scale, see training/export_checks.py) nothing is written and the exit code is 1.
The exported model takes what the model takes (e.g. standardised images); the task's own
preprocessing (Task.predict) is not part of it. --out must lie inside the experiments root
($EXPERIMENTS_ROOT) and end in the format's extension. Exit codes: 0 written, 1 cannot export or
too far from eager, 2 bad input.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="06_export.py",
        description="Export a trained run's model as safetensors, torch.export (.pt2) or ONNX, checked against eager.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_name_option(parser, "experiment")
    add_name_option(parser, "run")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--checkpoint", default="best",
                        help="best, last, a file of the run's checkpoints/ or a path (default: best)")
    parser.add_argument("--out", metavar="PATH", help="write here instead of <run>/exports/<checkpoint>.<ext>")
    parser.add_argument("--verbose", action="store_true", help="show the exporter's own output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The CLI; returns its exit code."""
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        run = Run.require(require_name(args.experiment, "experiment"), require_name(args.run, "run"))
        out = check_out_path(args.out, args.format) if args.out is not None else None  # before torch is imported
        from training.export import export_model, write_export  # imports torch
        from training.inference import find_checkpoint, load_trained

        checkpoint = find_checkpoint(run, args.checkpoint)
        path = out or default_export_path(run, checkpoint, args.format)
        trained = load_trained(run.experiment, run.run, checkpoint, "cpu")
        metadata = {"task": trained.task.name, "run": run.name, "checkpoint": trained.path.name,
                    "epoch": str(trained.epoch), "step": str(trained.step)}
        export = export_model(args.format, trained.model, trained.task.example_inputs(), trained.task.build_model,
                              metadata, args.verbose)
        ensure_run(run)  # a run made before exports existed gets its exports/ folder
        write_export(export, path)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ExportError, ImportError, RunIOError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(export.summary())
    print(f"wrote {path} ({len(export.data) / 1e6:.2f} MB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
