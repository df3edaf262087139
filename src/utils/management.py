"""Runs on disk: where they live, the table of a run's folders, creating runs atomically, listing.

The runs module: this file and `utils/runs/` (the `Run`, the config a new run gets, its outputs)
are the only code that creates run folders (tests/test_import_rooms.py checks it). A config reaches
`create_run` already checked by the layer that knows its schema (`training.run_config`).
The experiments root is `<repo>/experiments`, or the folder named by the environment variable
`EXPERIMENTS_ROOT`. Every path is built from validated names and checked to lie inside the root
before anything is created.
"""

import errno
import os
import secrets
import shlex
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils.configs import REPO_ROOT, dump_config, load_config_file
from utils.errors import (
    ExperimentNotFoundError,
    InvalidNameError,
    RunExistsError,
    RunIOError,
    RunNotFoundError,
    TemplateError,
)
from utils.fileio import atomic_write_text, fsync_directory, machine_error
from utils.names import validate_name

ROOT_ENV_VAR = "EXPERIMENTS_ROOT"
# The one table of a run's sub-folders: kind (as `Logger.get_path` takes it) -> folder name.
RUN_FOLDERS = {
    "checkpoint": "checkpoints", "log": "logs", "plot": "plots", "visualization": "visualizations", "export": "exports",
}
RUN_SUBDIRS = tuple(RUN_FOLDERS.values())
CONFIG_FILE = "config.json"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_FILE = "metrics.csv"
TEXT_LOG = "log.txt"
LOCK_FILE = "session.lock"  # beside config.json: held by the session training the run
ARCHIVE_DIR = "restarted"  # --restart moves the outputs into <run>/restarted/<time>/


@dataclass(frozen=True)
class RunInfo:
    """One row of a listing: experiment, run (None for an experiment row), creation time."""

    experiment: str
    run: str | None
    created: str


def experiments_root() -> Path:
    """The folder holding all experiments (env `EXPERIMENTS_ROOT` or `<repo>/experiments`)."""
    configured = os.environ.get(ROOT_ENV_VAR)
    root = Path(configured).expanduser() if configured else REPO_ROOT / "experiments"
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise RunIOError(
            f"the experiments root {root} is a file, not a folder; point {ROOT_ENV_VAR} at a folder "
            "(or move the file away)"
        )
    return root


def _inside_root(path: Path) -> Path:
    root = experiments_root()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidNameError(f"{path} lies outside the experiments root {root}")
    return resolved


def experiment_path(experiment: str) -> Path:
    """`<root>/<experiment>` for a valid name (not checked for existence)."""
    validate_name(experiment, "experiment name")
    return _inside_root(experiments_root() / experiment)


def run_path(experiment: str, run: str) -> Path:
    """`<root>/<experiment>/<run>` for valid names (not checked for existence)."""
    validate_name(run, "run name")
    return _inside_root(experiment_path(experiment) / run)


def create_experiment(experiment: str) -> Path:
    """Create the experiment folder if missing (an existing one is left as it is).

    A missing experiments root is created too, and said on stderr: a mistyped EXPERIMENTS_ROOT
    shows at once. A folder that cannot be made is a RunIOError naming it.
    """
    path = experiment_path(experiment)
    root = experiments_root()
    try:
        if not root.is_dir():
            root.mkdir(parents=True)
            print(f"created the experiments root {root} (set {ROOT_ENV_VAR} to put it elsewhere)", file=sys.stderr)
        path.mkdir(exist_ok=True)
    except OSError as error:
        raise machine_error(error, Path(error.filename or path)) from error
    return path


def create_run(experiment: str, run: str, config: dict[str, Any]) -> Path:
    """Create a complete run folder with its subfolders and `config.json`, atomically.

    The config is serialised first, so a config that cannot be saved creates nothing. The run
    is assembled in a hidden staging folder and renamed into place, so other processes see no
    run or a complete one. The rename fails when the run exists (a run folder is never empty),
    so of two processes creating the same run exactly one succeeds. Folders and files get the
    modes mkdir and open give under the user's umask (umask 022: 0755 and 0644).
    """
    target = require_new_run(experiment, run)
    text = dump_config(config)
    parent = create_experiment(experiment)
    try:
        staging = _make_staging_folder(parent, run)
    except OSError as error:
        raise machine_error(error, parent) from error
    try:
        for sub in RUN_SUBDIRS:
            (staging / sub).mkdir()
        atomic_write_text(staging / CONFIG_FILE, text)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise RunExistsError(_exists_message(experiment, run)) from None
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, (RunIOError, TemplateError)):  # RunExistsError is an OSError too
            raise
        raise machine_error(error, Path(error.filename or staging)) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_directory(parent)
    return target


def _make_staging_folder(parent: Path, run: str) -> Path:
    """A new hidden folder in `parent` with the mode a plain mkdir gives under the user's umask.

    tempfile.mkdtemp would make it 0700, and the rename keeps that mode: teammates could not
    read the run.
    """
    while True:
        staging = parent / f".{run}.creating-{secrets.token_hex(4)}"
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging


def require_new_run(experiment: str, run: str) -> Path:
    """The path for a new run, or `RunExistsError` when that run already exists."""
    path = run_path(experiment, run)
    if path.exists():
        raise RunExistsError(_exists_message(experiment, run))
    return path


def _exists_message(experiment: str, run: str) -> str:
    path = run_path(experiment, run)
    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        return f"run {experiment}/{run} exists at {path} without a {CONFIG_FILE}; {_recreate_hint(experiment, run)}"
    return f"run {experiment}/{run} already exists at {path}; choose another run name (nothing was changed)"


def _recreate_hint(experiment: str, run: str) -> str:
    """The command that keeps a run folder without config.json aside and creates the run anew."""
    path = run_path(experiment, run)
    aside = path.with_name(f"{run}.orphaned-{datetime.fromtimestamp(path.stat().st_mtime):%Y%m%d-%H%M%S}")
    return (
        f"keep its files aside and create the run anew: `mv {shlex.quote(str(path))} {shlex.quote(str(aside))} && "
        f"python src/01_initialize.py -e {experiment} -r {run}` (nothing was changed)"
    )


def require_run(experiment: str, run: str) -> Path:
    """The run's folder, or `RunNotFoundError` naming how to create it."""
    path = run_path(experiment, run)
    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        hint = _recreate_hint(experiment, run)
        raise RunNotFoundError(f"run {experiment}/{run} at {path} has no {CONFIG_FILE}; {hint}")
    if not (path / CONFIG_FILE).is_file():
        raise RunNotFoundError(
            f"run {experiment}/{run} does not exist at {path}; create it with "
            f"`python src/01_initialize.py -e {experiment} -r {run}`"
        )
    return path


def _created(path: Path) -> str:
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).astimezone()
    return stamp.isoformat(timespec="seconds")


def _run_created(path: Path) -> str:
    try:
        meta = load_config_file(path / CONFIG_FILE).get("meta", {})
        if isinstance(meta, dict) and isinstance(meta.get("created"), str):
            return meta["created"]
    except TemplateError:
        pass
    return _created(path)


def list_experiments() -> list[str]:
    """Names of the experiments under the root, sorted."""
    root = experiments_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_runs(experiment: str) -> list[RunInfo]:
    """The runs of one experiment (folders holding a config.json), sorted by name."""
    path = experiment_path(experiment)
    if not path.is_dir():
        choices = ", ".join(list_experiments()) or "none"
        raise ExperimentNotFoundError(
            f"experiment {experiment!r} does not exist at {path}; existing experiments: {choices}"
        )
    runs = [  # hidden folders are runs still being staged by create_run
        p for p in path.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_FILE).is_file()
    ]
    return [RunInfo(experiment, p.name, _run_created(p)) for p in sorted(runs)]


def list_all() -> list[RunInfo]:
    """Every experiment with its runs; an experiment without runs gets a row with run None."""
    rows: list[RunInfo] = []
    for experiment in list_experiments():
        runs = list_runs(experiment)
        rows.extend(runs or [RunInfo(experiment, None, _created(experiment_path(experiment)))])
    return rows


def format_run_table(rows: list[RunInfo]) -> str:
    """A plain-text table of experiments, runs and creation times (a run of None shows '-')."""
    table = [("EXPERIMENT", "RUN", "CREATED")]
    table += [(row.experiment, row.run or "-", row.created) for row in rows]
    widths = [max(len(line[col]) for line in table) for col in range(2)]
    return "\n".join(
        f"{exp:<{widths[0]}}  {run:<{widths[1]}}  {created}" for exp, run, created in table
    )
