"""The Logger's records of what a run is: its config, its model's architecture, its git commit."""

import json
from collections.abc import Mapping
from typing import Any

from utils.helper_functions import count_parameters
from utils.log.files import describe_architecture, write_git_record
from utils.log.records import CONFIG


class LoggerRunRecords:
    """Run records of `utils.logging.Logger`, written once per run into `logs/` and the writers.

    They use the Logger's `_check_open`, `_enabled`, `_text`, `_put`, `get_path` and `info`.
    """

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Config to log.txt, W&B config and TensorBoard hparams (written at `finish()`)."""
        self._check_open()
        if self._enabled:
            plain = json.loads(json.dumps(dict(config), default=str))  # a copy with JSON types only
            self._text.info("config:\n" + json.dumps(plain, indent=2), extra={"file_only": True})
            self.info(f"config logged to {self.get_path('log') / 'log.txt'}")  # console: one line
            self._put((CONFIG, plain))

    def log_architecture(self, model: Any) -> None:
        """Write `logs/architecture.txt`: the module tree, parameters per module and the total."""
        self._check_open()
        if self._enabled:
            path = self.get_path("log") / "architecture.txt"
            path.write_text(describe_architecture(model), encoding="utf-8")
            total, trainable = count_parameters(model, trainable_only=False), count_parameters(model)
            self.info(f"model with {total:,} parameters ({trainable:,} trainable); architecture written to {path}")

    def log_git_hash(self) -> None:
        """Commit and dirty flag to `logs/git.txt`, the uncommitted diff to `logs/git_diff.patch`."""
        self._check_open()
        if self._enabled:
            summary = write_git_record(self.get_path("log"))
            self.info(f"git commit {summary['commit']} (dirty: {summary['dirty']})")
