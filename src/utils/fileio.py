"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from utils.errors import DiskFullError, RunIOError

# mkstemp creates files readable by the owner only; give the final file the mode a plain
# open() would (0o666 minus the umask). Read once at import, while still single-threaded.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
_NO_SPACE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_MACHINE_FIXES = {
    errno.EROFS: "the file system is mounted read-only: remount it writable, or use another EXPERIMENTS_ROOT",
    errno.EACCES: "make it writable for this user (chmod u+w), or use another EXPERIMENTS_ROOT",
    errno.EPERM: "make it writable for this user (chmod u+w), or use another EXPERIMENTS_ROOT",
}


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: Path | str, expected_size: int | None = None) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temp file beside `path`; on success fsync and `os.replace` it.

    The temp file is `.<name>.<random>.tmp`, which no `*.pt`/`*.csv` pattern matches. On any
    error it is removed and `path` keeps its old content. A write that fails for lack of space
    (ENOSPC or EDQUOT, in the body or while flushing) raises DiskFullError naming the file, the
    space needed (`expected_size`, the size of the data to write, when the caller knows it) and
    the space free.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        _raise_if_disk_full(error, path, expected_size)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        _raise_if_disk_full(error, path, expected_size)
        raise
    fsync_directory(path.parent)


def machine_error(error: OSError, path: Path) -> RunIOError:
    """A one-line RunIOError (DiskFullError on ENOSPC/EDQUOT) for an OSError of the machine while
    writing `path`, naming the path, the cause and what to do; the caller raises it from `error`."""
    try:
        _raise_if_disk_full(error, Path(path), None)
    except DiskFullError as disk_full:
        return disk_full
    fix = _MACHINE_FIXES.get(error.errno, "fix the folder (or use another EXPERIMENTS_ROOT) and try again")
    return RunIOError(f"cannot write {path}: {error.strerror or error}; {fix}")


def _raise_if_disk_full(error: BaseException, path: Path, expected_size: int | None) -> None:
    """Raise a one-line DiskFullError from `error` if it is ENOSPC/EDQUOT: the file, the cause,
    the space needed and the space free (measured after the temp file is gone)."""
    if isinstance(error, DiskFullError) or not (isinstance(error, OSError) and error.errno in _NO_SPACE):
        return
    needed = "" if expected_size is None else f"needs about {_format_size(expected_size)}, "
    try:
        free = f"{_format_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = "free space unknown"
    disk_full = DiskFullError(
        f"cannot write {path}: {_NO_SPACE[error.errno]} ({needed}{free} on {path.parent}); "
        "free some space there (or write elsewhere) and try again"
    )
    disk_full.errno = error.errno
    raise disk_full from error


def _format_size(size: int) -> str:
    """`size` bytes for a message: '512 bytes', '1.5 kB', '2.0 MB', '3.1 GB' (decimal units)."""
    if size < 1000:
        return f"{size} bytes"
    scaled = float(size)
    for unit in ("kB", "MB", "GB"):
        scaled /= 1000
        if scaled < 1000:
            return f"{scaled:.1f} {unit}"
    return f"{scaled / 1000:.1f} TB"


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_open`)."""
    with atomic_open(path, expected_size=len(data)) as handle:
        handle.write(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def reporting_disk_full(path: Path | str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT raised in the body (an append to `path`) into DiskFullError naming it."""
    try:
        yield
    except OSError as error:
        _raise_if_disk_full(error, Path(path), None)
        raise


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (checkpoints may be large): what records cite."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
