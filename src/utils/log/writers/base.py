"""The small interface every logging backend implements.

Writers are only ever called from the logger's background thread, one call at a time, so they
need no locks. Values arrive already converted: scalars as Python numbers, images as (H, W, 3)
uint8 arrays, histograms as 1-D NumPy arrays. The base class accepts every call and does
nothing, so a backend overrides only what it supports. A backend is started by its start
function, `start(context, options, **kwargs) -> Writer`, which the registry
(utils.log.writers.registry) calls with the run's `WriterContext` and the backend's parsed
config section.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class WriterContext:
    """What a start function gets from the run: where to write, the resume step, a warning line."""

    log_dir: Path  # the run's logs/ folder
    resume_step: int | None  # first step logged again after a resume; drop outputs at >= it
    warn: Callable[[str], None]  # a WARNING line on the console and in log.txt


class Writer:
    """Base and do-nothing writer; `name` appears in error messages ("the csv writer failed")."""

    name = "null"

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        """Record scalar metrics of one step; steps arrive in ascending order, a step may repeat."""

    def write_image(self, name: str, image: np.ndarray, step: int) -> None:
        """Record an (H, W, 3) uint8 RGB image."""

    def write_histogram(self, name: str, values: np.ndarray, step: int) -> None:
        """Record the distribution of a 1-D float64 array."""

    def write_text(self, name: str, text: str, step: int) -> None:
        """Record a piece of text (a sample prediction, a note)."""

    def write_config(self, config: dict[str, Any]) -> None:
        """Record the run's configuration (hyperparameters)."""

    def flush(self, force: bool = True) -> None:
        """Make what was written durable against a crash of this process.

        `force=False` is the background thread's periodic flush: a writer may hold back data
        that can still change (the CSV row of a step still being logged). `force=True` comes
        from `Logger.flush()`/`finish()` and must write everything.
        """

    def sync(self) -> None:
        """`flush(force=True)`, then make durable against a power loss what a resume truncates.

        Called before a checkpoint becomes the resume point (once per checkpoint, not per
        step): a writer whose outputs are cut back to the checkpoint's step on resume (CSV,
        TensorBoard) fsyncs them here, or the rows before that step would be lost for good.
        """
        self.flush(True)

    def close(self) -> None:
        """Flush and release files, handles and services; called exactly once."""
