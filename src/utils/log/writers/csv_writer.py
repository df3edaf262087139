"""metrics.csv: wide format, one row per step, columns `step` then metrics in first-seen order.

Rows are appended and flushed to the OS by the background thread about once a second, so after
a crash the file parses and holds everything but the last second or two. A metric that first
appears mid-run, or a value added to a row already on disk, makes the next flush rewrite the
file atomically (at most one rewrite per flush). Floats are written with `repr`, so they read
back bit-identical; NaN and inf are kept as `nan`, `inf`, `-inf`. A metric name holding a
comma, a quote, `\r` or `\n` is quoted, so pandas reads it back exactly.
`sync()` (before each checkpoint) writes every pending row and fsyncs the file: a resume keeps
the rows before its checkpoint's step, so those must be on disk before the checkpoint is.
Config: `logging.csv` (CsvConfig) turns it on.
"""

import csv
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from utils.config_fields import option
from utils.fileio import atomic_write_text, reporting_disk_full
from utils.log.writers.base import Writer, WriterContext

STEP_COLUMN = "step"
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


@dataclass(frozen=True, kw_only=True)
class CsvConfig:
    """The CSV writer's key in the config's `logging` section."""

    SECTION: ClassVar[str] = "logging"
    csv: bool = option(True, "write scalars to logs/metrics.csv, one row per step")


def format_cell(value: float | int) -> str:
    """Exact text of a number: `repr` round-trips floats; bools become 0/1."""
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _header_cell(name: str) -> str:
    """A column name as CSV text: quoted (quotes doubled) when it holds `,` `"` `\r` or `\n`.

    The csv module leaves a lone `\r` bare with our `\n` line ends, and pandas then reads it
    as a line break: names are quoted here instead.
    """
    return '"' + name.replace('"', '""') + '"' if _NEEDS_QUOTES.search(name) else name


def _step_of(row: list[str]) -> int | None:
    """The step of a row read back, None for a row without a valid step (dropped on resume)."""
    try:
        return int(row[0])
    except (IndexError, ValueError):
        return None


class CsvWriter(Writer):
    """Owns one CSV file: buffering of the current step, appends, header changes, resume."""

    name = "csv"

    def __init__(self, path: Path, resume_step: int | None = None, hold_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self._hold_seconds = hold_seconds
        self._columns: list[str] = [STEP_COLUMN]
        self._index: dict[str, int] = {STEP_COLUMN: 0}  # column -> position: lookups in O(1)
        self._pending: dict[int, dict[str, str]] = {}  # step -> cells, not yet on disk
        self._last_update = time.monotonic()
        self._written_step: int | None = None  # step of the last row on disk that may be amended
        self._amend: dict[str, str] = {}  # cells to add to that row
        self._needs_rewrite = False
        if self.path.is_file():
            self._adopt_existing_file(resume_step)
        else:
            self._needs_rewrite = True  # the first flush writes the header
        self._handle: io.TextIOWrapper | None = None

    def _adopt_existing_file(self, resume_step: int | None) -> None:
        header, rows = self._read_rows()
        if header:
            self._columns = header
            self._index = {name: position for position, name in enumerate(header)}
        if resume_step is not None:
            kept = [row for row in rows if _step_of(row) is not None and _step_of(row) < resume_step]
            if len(kept) != len(rows):
                atomic_write_text(self.path, self._render(self._columns, kept))
            if kept:  # values logged again for the last kept step amend its row
                self._written_step = _step_of(kept[-1])
        elif not header:
            self._needs_rewrite = True

    def _read_rows(self) -> tuple[list[str], list[list[str]]]:
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
        return (rows[0], rows[1:]) if rows else ([], [])

    @staticmethod
    def _render(header: list[str], rows: list[list[str]]) -> str:
        buffer = io.StringIO()
        buffer.write(",".join(map(_header_cell, header)) + "\n")
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()

    def write_scalars(self, step: int, metrics: dict[str, float | int]) -> None:
        cells = {key: format_cell(value) for key, value in metrics.items()}
        for key in cells:
            if key not in self._index:
                self._index[key] = len(self._columns)
                self._columns.append(key)
                self._needs_rewrite = True
        if step == self._written_step and step not in self._pending:
            self._amend.update(cells)
            self._needs_rewrite = True
        else:
            self._pending.setdefault(step, {}).update(cells)
        self._last_update = time.monotonic()

    def flush(self, force: bool = True) -> None:
        steps = list(self._pending)
        if not force and steps and time.monotonic() - self._last_update < self._hold_seconds:
            steps = steps[:-1]  # the newest step may still receive values
        rows = [self._row(step, self._pending.pop(step)) for step in steps]
        if self._needs_rewrite:
            self._rewrite(rows)
        elif rows:
            self._append(rows)
        if steps:
            self._written_step = steps[-1]

    def _row(self, step: int, cells: dict[str, str]) -> list[str]:
        return [str(step)] + [cells.get(column, "") for column in self._columns[1:]]

    def _append(self, rows: list[list[str]]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        with reporting_disk_full(self.path):
            if self._handle is None:
                self._handle = open(self.path, "a", newline="", encoding="utf-8")
            self._handle.write(buffer.getvalue())  # one write: a kill leaves whole rows
            self._handle.flush()

    def _rewrite(self, rows: list[list[str]]) -> None:
        """Rewrite the file atomically with the current header, amended last row and new rows."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        old = self._read_rows()[1] if self.path.is_file() else []
        width = len(self._columns)
        old = [row + [""] * (width - len(row)) for row in old]
        if self._amend and old:
            for column, cell in self._amend.items():
                old[-1][self._index[column]] = cell
        atomic_write_text(self.path, self._render(self._columns, old + rows))
        self._amend = {}
        self._needs_rewrite = False

    def sync(self) -> None:
        self.flush(force=True)
        if self._handle is not None:  # a rewrite since the last append is fsynced already
            with reporting_disk_full(self.path):
                os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.flush(force=True)
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def start_csv(context: WriterContext, options: CsvConfig, file_name: str = "metrics.csv") -> CsvWriter:
    """The run's CSV writer on `logs/<file_name>`; on resume, rows at steps >= T are dropped."""
    return CsvWriter(context.log_dir / file_name, context.resume_step)
