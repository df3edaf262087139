"""Where an Optuna sweep keeps its study: one journal file in the sweep folder, for every executor.

The study is Optuna's `JournalStorage` on a `JournalFileBackend`, an append-only log that the driver
and every trial process (on this machine or on cluster nodes) write to under a lock taken by an
exclusive create of `<file>.lock` (`JournalFileOpenLock`). SQLite's locking is unreliable on NFS
and Lustre, where a cluster's sweep folder lives (optuna #815, #820); the journal is what Optuna
documents for that case. A lock left behind by a killed process is broken after
`LOCK_GRACE_S` seconds.

Sweeps started before kept the study in SQLite (`study.db`): opening such a sweep copies that
study into the journal once (`optuna.copy_study`) and keeps the old file.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "study.journal"
SQLITE_STUDY_FILE = "study.db"  # the study of sweeps started before the journal
LOCK_GRACE_S = 30  # a lock file older than this is a killed process's and is removed
SQLITE_TIMEOUT_S = 60.0  # an old SQLite study's writer waits this long for its lock


def study_path(folder: Path) -> Path:
    """The journal file of the sweep whose folder is `folder` (`sweeps.state.sweep_dir`)."""
    return Path(folder) / STUDY_FILE


def open_storage(path: Path | str) -> "optuna.storages.JournalStorage | optuna.storages.RDBStorage":
    """The journal storage in the file `path`, locked through `<path>.lock`.

    A `sqlite:///` URL opens that SQLite study instead: the command of a trial started before its
    sweep moved to the journal (a SLURM job that requeues itself) still names one.
    """
    from sweeps.optuna_search import import_optuna

    optuna = import_optuna()
    if str(path).startswith("sqlite:///"):
        return optuna.storages.RDBStorage(str(path), engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path), grace_period=LOCK_GRACE_S))
    return optuna.storages.JournalStorage(backend)


def migrate_sqlite_study(folder: Path, study_name: str) -> str | None:
    """Copy the SQLite study of an older sweep into the journal; a note to print, or None.

    Only when `study.db` exists and the journal does not. The copy goes to a temp journal that
    is renamed into place when complete, so a kill during the copy leaves no half study behind
    (the next run copies again). `study.db` stays as it was. Call it under the sweep's lock.
    """
    folder = Path(folder)
    journal, sqlite = study_path(folder), folder / SQLITE_STUDY_FILE
    if journal.exists() or not sqlite.exists():
        return None
    from sweeps.optuna_search import import_optuna

    optuna = import_optuna()
    for stale in folder.glob(f".{STUDY_FILE}.*.tmp*"):  # a killed copy's (the driver holds the sweep's lock)
        stale.unlink(missing_ok=True)
    temp = folder / f".{STUDY_FILE}.{os.getpid()}.tmp"
    source = optuna.storages.RDBStorage(f"sqlite:///{sqlite}")
    try:
        optuna.copy_study(from_study_name=study_name, from_storage=source, to_storage=open_storage(temp))
    finally:
        source.remove_session()
        Path(f"{temp}.lock").unlink(missing_ok=True)
    os.replace(temp, journal)
    trials = len(optuna.load_study(study_name=study_name, storage=open_storage(journal)).trials)
    return (f"copied the SQLite study {sqlite} ({trials} trials) into {journal}, which this sweep uses from now "
            f"on; {sqlite.name} is kept and no longer read")
