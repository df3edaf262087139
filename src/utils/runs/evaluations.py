"""What `05_evaluate.py` leaves in a run: one line per evaluation in `logs/evaluations.jsonl`, and
the task's drawings in `visualizations/eval/<checkpoint>-<split>/`. Neither touches what training
wrote (checkpoints, metrics.csv, TensorBoard's files), so a run can be evaluated as often as wanted."""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from utils.fileio import machine_error
from utils.runs.run import Run

SPLITS = ("test", "val", "train")  # what a checkpoint can be evaluated on
EVALUATIONS_FILE = "evaluations.jsonl"  # in logs/
EVAL_FOLDER = "eval"  # in visualizations/


def evaluations_file(run: Run) -> Path:
    return run.logs / EVALUATIONS_FILE


def append_evaluation(run: Run, record: dict[str, Any]) -> Path:
    """Append `record` as one JSON line, flushed to disk (a reader never sees half a line but the last)."""
    path = evaluations_file(run)
    line = json.dumps(record, sort_keys=True) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise machine_error(error, path) from error
    return path


def read_evaluations(run: Run) -> list[dict[str, Any]]:
    """Every recorded evaluation, oldest first (none when the run was never evaluated)."""
    path = evaluations_file(run)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluation_drawings_folder(run: Run, checkpoint: Path, split: str) -> Path:
    """`visualizations/eval/<checkpoint stem>-<split>/`, created: `best-test`, `checkpoint_epoch_3-val`."""
    folder = run.visualizations / EVAL_FOLDER / f"{Path(checkpoint).stem}-{split}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (checkpoints may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
