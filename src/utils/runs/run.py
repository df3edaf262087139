"""`Run`: a run resolved once into its names and every path the engine, the Logger and the tools use."""

from dataclasses import dataclass
from pathlib import Path

from utils.management import (
    ARCHIVE_DIR,
    BEST_CHECKPOINT,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    LOCK_FILE,
    METRICS_FILE,
    RUN_FOLDERS,
    TEXT_LOG,
    require_run,
    run_path,
)


@dataclass(frozen=True)
class Run:
    """A run resolved once: its names and every path the engine, the Logger and the tools use.

    `Run.resolve` checks the names and that the folder lies inside the experiments root;
    `Run.require` also that the run exists. Nothing is created here (see `create_run`).
    """

    experiment: str
    run: str
    path: Path

    @classmethod
    def resolve(cls, experiment: str, run: str) -> "Run":
        return cls(experiment, run, run_path(experiment, run))

    @classmethod
    def require(cls, experiment: str, run: str) -> "Run":
        return cls(experiment, run, require_run(experiment, run))

    @property
    def name(self) -> str:
        """`<experiment>/<run>`, as messages print it."""
        return f"{self.experiment}/{self.run}"

    def folder(self, kind: str) -> Path:
        """The sub-folder for 'checkpoint', 'log', 'plot', 'visualization' or 'export'."""
        if kind not in RUN_FOLDERS:
            raise ValueError(f"unknown path kind {kind!r}: choose from {', '.join(RUN_FOLDERS)}")
        return self.path / RUN_FOLDERS[kind]

    @property
    def subfolders(self) -> tuple[Path, ...]:
        """Every sub-folder of the table, in its order."""
        return tuple(self.folder(kind) for kind in RUN_FOLDERS)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.folder("checkpoint")

    @property
    def logs(self) -> Path:
        return self.folder("log")

    @property
    def plots(self) -> Path:
        return self.folder("plot")

    @property
    def visualizations(self) -> Path:
        return self.folder("visualization")

    @property
    def exports(self) -> Path:
        return self.folder("export")

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def archive(self) -> Path:
        return self.path / ARCHIVE_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    @property
    def metrics_csv(self) -> Path:
        return self.logs / METRICS_FILE

    @property
    def text_log(self) -> Path:
        return self.logs / TEXT_LOG
