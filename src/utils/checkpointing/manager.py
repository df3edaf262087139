"""Which checkpoint files a run keeps, and which one a resume starts from.

A run's `checkpoints/` folder holds `last.pt` (every save), `checkpoint_epoch_<N>.pt` (the
newest `keep_last` of them) and `best.pt` (the best metric so far). The file-level API
(build, save, load, restore) lives in `utils.checkpointing.io`, the random states in `.rng`.
A save first makes the active Logger's outputs durable (see `_make_logs_durable`).
"""

import math
import re
from pathlib import Path
from typing import Any

from utils.checkpointing.io import load_checkpoint, peek_checkpoint, save_checkpoint
from utils.errors import CheckpointError, UnreadableCheckpointError
from utils.logging import LOGGER, is_active
from utils.management import BEST_CHECKPOINT, LAST_CHECKPOINT

_EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)\.pt")
_STALE_TEMP_GLOB = ".*.pt.*.tmp"  # what save_checkpoint leaves behind when it is SIGKILLed


class CheckpointManager:
    """Writes last/epoch/best checkpoints into one folder, prunes old ones, finds the resume point.

    Only global rank 0 may call `save` (the caller guards it); every rank may create a
    manager and call `find_resume_checkpoint`. Creating a manager removes the temp files a
    killed save left behind, so create managers before training starts (no save in flight),
    and let only one training run use a folder at a time.
    """

    def __init__(self, directory: Path, keep_last: int = 2, metric_mode: str = "max") -> None:
        if metric_mode not in ("min", "max"):
            raise ValueError(f"metric_mode must be 'min' or 'max', got {metric_mode!r}")
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be an integer >= 1, got {keep_last!r}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.metric_mode = metric_mode
        self.skipped: list[tuple[Path, str]] = []  # every unreadable file met, with the reason
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()
        self._best_metric = self._recover_best_metric()

    @property
    def best_metric(self) -> float | None:
        """The best metric saved so far (from best.pt when the folder already had one)."""
        return self._best_metric

    def is_better(self, metric: float) -> bool:
        """Whether `metric` beats the best so far in `metric_mode` (NaN never does)."""
        metric = float(metric)
        if math.isnan(metric):
            return False
        if self._best_metric is None:
            return True
        return metric > self._best_metric if self.metric_mode == "max" else metric < self._best_metric

    def epoch_path(self, epoch: int) -> Path:
        """Where the checkpoint of `epoch` goes."""
        return self.directory / f"checkpoint_epoch_{int(epoch)}.pt"

    def save(self, checkpoint: dict[str, Any], *, epoch_file: bool, metric: float | None = None) -> dict[str, Path]:
        """Write last.pt, the epoch file (if `epoch_file`) and best.pt (if `metric` improves).

        The manager alone owns the best metric: it decides whether `metric` improves, and every
        file written stores the best so far (including `metric`) as `best_metric`, whatever the
        caller put there. Old epoch files beyond `keep_last` are deleted only after the new
        files are complete. Returns the written paths under "last", "epoch" and "best".
        Call on rank 0 only.
        """
        improved = metric is not None and self.is_better(metric)
        best = float(metric) if improved else self._best_metric
        checkpoint = {**checkpoint, "best_metric": best}
        _make_logs_durable()
        written = {"last": save_checkpoint(self.directory / LAST_CHECKPOINT, checkpoint)}
        if epoch_file:
            written["epoch"] = save_checkpoint(self.epoch_path(checkpoint["epoch"]), checkpoint)
        if improved:
            written["best"] = save_checkpoint(self.directory / BEST_CHECKPOINT, checkpoint)
            self._best_metric = best
        if epoch_file:
            self._prune_epoch_files()
        return written

    def find_resume_checkpoint(self, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]]:
        """The valid checkpoint with the highest `global_step` among last.pt and the epoch files.

        Ties go to last.pt, then to the higher epoch. Unreadable files are skipped and added
        to `self.skipped` as (path, one-line reason without the path) for the caller to log (an
        unreadable best.pt met when the manager was created is there too). Raises
        CheckpointError when no file is valid, naming each file skipped and why.
        """
        skipped_before = len(self.skipped)
        ranked = []  # (global_step, -position, path): max picks the highest step, earliest on ties
        for position, path in enumerate(self._resume_candidates()):
            try:
                ranked.append((int(peek_checkpoint(path)["global_step"]), -position, path))
            except UnreadableCheckpointError as error:
                self.skipped.append((path, error.reason))
        for _, _, path in sorted(ranked, reverse=True):
            try:
                return path, load_checkpoint(path, map_location=map_location)
            except UnreadableCheckpointError as error:  # the tensor data itself is damaged
                self.skipped.append((path, error.reason))
        raise CheckpointError(self._no_valid_checkpoint_message(self.skipped[skipped_before:]))

    def _no_valid_checkpoint_message(self, skipped: list[tuple[Path, str]]) -> str:
        """What find_resume_checkpoint raises: the folder, then one line per skipped file and why."""
        message = f"no valid checkpoint in {self.directory}"
        if not skipped:
            return f"{message}; nothing to resume from"
        lines = "".join(f"\n  {path.name}: {reason}" for path, reason in skipped)
        return f"{message} ({len(skipped)} unreadable file(s) skipped); nothing to resume from{lines}"

    def _resume_candidates(self) -> list[Path]:
        """last.pt, then the epoch files newest first (only those that exist)."""
        last = self.directory / LAST_CHECKPOINT
        return ([last] if last.exists() else []) + [path for _, path in reversed(self._epoch_files())]

    def _epoch_files(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every epoch checkpoint in the folder, oldest first."""
        found = []
        for path in self.directory.iterdir():
            match = _EPOCH_FILE.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _prune_epoch_files(self) -> None:
        """Delete all but the newest `keep_last` epoch checkpoints."""
        for _, path in self._epoch_files()[: -self.keep_last]:
            path.unlink(missing_ok=True)

    def _remove_stale_temp_files(self) -> None:
        """Delete half-written temp files of saves that were killed (they can be large)."""
        for path in self.directory.glob(_STALE_TEMP_GLOB):
            path.unlink(missing_ok=True)

    def _recover_best_metric(self) -> float | None:
        """The `best_metric` stored in an existing best.pt, so a resumed run keeps its best."""
        path = self.directory / BEST_CHECKPOINT
        if not path.exists():
            return None
        try:
            best = peek_checkpoint(path)["best_metric"]
        except UnreadableCheckpointError as error:
            self.skipped.append((path, error.reason))
            return None
        return None if best is None else float(best)


def _make_logs_durable() -> None:
    """Write and fsync every metric logged so far before a checkpoint can become the resume point.

    A resume cuts the CSV and TensorBoard back to the checkpoint's step, so rows logged before
    it that were still in memory at a kill would be lost for good. One flush per save (a few
    ms), nothing per step; a no-op without an active Logger (a manager used on its own).
    """
    if is_active():
        LOGGER.flush(durable=True)
