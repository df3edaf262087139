"""`NullLogger`: a stand-in that accepts every call of the Logger's API and writes nothing.

For code that logs but may run outside a run: a unit test of a model, a notebook, a script
that only evaluates. It has every public method of `utils.logging.Logger` with the same
signature (a test keeps the two in step) and, like a Logger on a rank other than 0, does
nothing: no files, no thread, no checks of the values. It never closes; calls after
`finish()` are accepted too. Pick it where no Logger is active:

    from utils.logging import LOGGER, NullLogger, is_active
    log = LOGGER if is_active() else NullLogger()
"""

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from utils.config_fields import ParsedConfig
from utils.log.files import path_of_kind


class NullLogger:
    """Accepts every Logger call and writes nothing; `path` (optional) answers `get_path`."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.exp_name = self.run_name = self.resume_step = None
        self.path = Path(path) if path is not None else None

    def start_writers(self, logging_section: Mapping[str, Any] | ParsedConfig) -> None:
        """Does nothing (starts no writer, checks no key)."""

    def initialize_csv(self, file_name: str = "metrics.csv") -> None:
        """Does nothing."""

    def initialize_tensorboard(self, **kwargs: Any) -> None:
        """Does nothing."""

    def initialize_wandb(self, project_name: str, **kwargs: Any) -> None:
        """Does nothing (starts no W&B run)."""

    def log(self, data: Mapping[str, Any], step: int) -> None:
        """Does nothing."""

    def log_image(self, name: str, image: Any, step: int | None = None, **options: Any) -> None:
        """Does nothing."""

    def log_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        """Closes the figure, as `Logger.log_figure` does, so a loop does not pile figures up."""
        pyplot = sys.modules.get("matplotlib.pyplot")  # loaded by whoever drew the figure
        if pyplot is not None:
            pyplot.close(figure)

    def log_histogram(self, name: str, values: Any, step: int | None = None) -> None:
        """Does nothing."""

    def log_text(self, name: str, text: str, step: int | None = None) -> None:
        """Does nothing."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Does nothing."""

    def log_architecture(self, model: Any) -> None:
        """Does nothing."""

    def log_git_hash(self) -> None:
        """Does nothing."""

    def info(self, message: str) -> None:
        """Does nothing."""

    def warning(self, message: str) -> None:
        """Does nothing."""

    def error(self, message: str) -> None:
        """Does nothing."""

    @property
    def last_step(self) -> int | None:
        """Always None: nothing is logged."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The state of a Logger that logged nothing."""
        return {"last_step": None, "wandb_run_id": None}

    def get_path(self, kind: str) -> Path:
        """The folder of `kind` under `path`; RuntimeError when the NullLogger has no path."""
        if self.path is None:
            path_of_kind(Path(), kind)  # an unknown kind is still a ValueError
            raise RuntimeError(
                f"NullLogger.get_path({kind!r}): a NullLogger has no run folder; create it as "
                "NullLogger(path=some_folder) if the code saves files there"
            )
        return path_of_kind(self.path, kind)

    def flush(self, *, durable: bool = False) -> None:
        """Does nothing."""

    def finish(self) -> None:
        """Does nothing."""

    def __repr__(self) -> str:
        return "NullLogger()" if self.path is None else f"NullLogger(path={str(self.path)!r})"
