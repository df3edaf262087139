"""What a run has already produced, and moving it aside for `--restart`.

A plain start of a run that has trained would mix two trainings in one folder (every step twice
in the CSV, a second TensorBoard file, a second W&B run), so the CLI refuses it; `--restart`
moves the outputs into `<run>/restarted/<time>/` first. They are never deleted. TensorBoard
over `experiments/` shows them as their own entry, `.../restarted/<time>/logs`, and `--list`
does not see them, since they hold no `config.json` of a run.
"""

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from utils.errors import RunHasOutputsError
from utils.fileio import atomic_write_text, fsync_directory
from utils.management import ARCHIVE_DIR
from utils.runs.run import Run

SUMMARY_FILE = "summary.json"  # in logs/: written last, only by a session that finished


def existing_outputs(run: Run) -> list[Path]:
    """The files that show the run has trained: checkpoints, metrics, events, a W&B folder."""
    found = sorted(run.checkpoints.glob("*.pt"))
    found += [path for path in (run.metrics_csv, run.logs / "wandb", run.logs / SUMMARY_FILE) if path.exists()]
    found += sorted(run.logs.glob("events.out.tfevents.*"))
    return found


def refuse_plain_start(run: Run) -> None:
    """Raise RunHasOutputsError (exit 2) when the run has outputs; a fresh run passes."""
    found = existing_outputs(run)
    if found:
        shown = ", ".join(str(path.relative_to(run.path)) for path in found[:3])
        raise RunHasOutputsError(
            f"run {run.name} has already trained ({shown}); continue it with --resume (from its newest "
            "valid checkpoint; a run without one starts over from step 0), or start over with --restart "
            f"(both keep old outputs they replace under {ARCHIVE_DIR}/); nothing was changed"
        )


def move_outputs_aside(run: Run) -> Path | None:
    """Move every sub-folder with content into `<run>/restarted/<time>/`, leave them empty.

    Each move is one `rename` (atomic); after a crash half-way, a second `--restart` moves the
    rest. The run's config.json is copied beside them, so the old outputs keep their config.
    Returns the archive folder, or None when there was nothing to move.
    """
    moved = [folder for folder in run.subfolders if any(folder.iterdir())]
    if not moved:
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    archive = run.archive / stamp
    archive.mkdir(parents=True)
    shutil.copy2(run.config_file, archive / run.config_file.name)
    for folder in moved:
        os.rename(folder, archive / folder.name)
        folder.mkdir()
    fsync_directory(archive)
    fsync_directory(run.path)
    return archive


def write_summary(run: Run, summary: dict[str, Any]) -> None:
    """`logs/summary.json`, atomically: the mark of a session that finished."""
    atomic_write_text(run.logs / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")


def read_summary(run: Run) -> dict[str, Any] | None:
    """What the session that finished last wrote (epochs, stopped_early, ...), None when none did."""
    try:
        summary = json.loads((run.logs / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and isinstance(summary.get("epochs"), int) else None
