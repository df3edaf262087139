"""Checkpoint files: build, save atomically, load safely, restore.

`utils.checkpointing.manager` decides which files a run keeps; `utils.checkpointing.rng`
captures and restores the random states a checkpoint carries.

A checkpoint is a plain dict that `torch.load(..., weights_only=True)` can read: no pickled
NumPy arrays or custom classes, so loading never runs code from the file. Saving checks
this up front, so a bad value fails at save time with its key named, not at resume time.

torch is imported inside the functions, so importing this module stays cheap.
"""

from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

from utils.checkpointing.diagnosis import describe_mismatch, one_line, why_load_failed, why_not_an_archive
from utils.checkpointing.rng import capture_rng_state, restore_rng_state
from utils.errors import CheckpointError, UnreadableCheckpointError
from utils.fileio import atomic_open
from utils.helper_functions import unwrap_model
from utils.sharded_state import load_model_state, load_optimizer_state, model_state, optimizer_state

FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format_version", "model", "optimizer", "scheduler", "scaler", "rng",
    "epoch", "global_step", "best_metric", "extra",
)
_SCALAR_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray)


def build_checkpoint(
    *,
    model: "torch.nn.Module",  # noqa: F821
    optimizer: "torch.optim.Optimizer | None" = None,  # noqa: F821
    scheduler: Any | None = None,
    scaler: Any | None = None,
    epoch: int,
    global_step: int,
    best_metric: float | None = None,
    extra: dict | None = None,
    task_state: dict | None = None,
) -> dict[str, Any]:
    """Everything needed to continue training exactly: states, counters, random states.

    `task_state` is the task's `state_dict()` (preprocessing such as a mean and std), which
    `training.inference.load_trained` restores; checkpoints written before it existed lack the key.

    `epoch` is the number of completed epochs and `global_step` the number of completed
    optimizer steps, so a resumed loop starts at `epoch` and counts on from `global_step`.
    A model sharded by FSDP is gathered to its full state (see `utils.sharded_state`): every
    rank calls this then, and only rank 0's checkpoint holds the states.
    """
    return {
        "format_version": FORMAT_VERSION,
        "model": model_state(model),
        "optimizer": None if optimizer is None else optimizer_state(model, optimizer),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": capture_rng_state(),
        "epoch": int(epoch),
        "global_step": int(global_step),
        "best_metric": None if best_metric is None else float(best_metric),
        "extra": extra,
        "task_state": task_state or {},
    }


def check_weights_only_loadable(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError naming the first value `torch.load(weights_only=True)` would refuse.

    Exact types are checked: a NumPy float is a `float` subclass but is pickled as a NumPy
    object, which weights_only loading rejects.
    """
    import torch

    if isinstance(value, torch.Tensor) and type(value) in (torch.Tensor, torch.nn.Parameter):
        return
    if type(value) in _SCALAR_TYPES or isinstance(value, (torch.dtype, torch.device)):
        return
    if type(value) in (dict, OrderedDict, Counter):
        for key, item in value.items():
            check_weights_only_loadable(key, f"{where} key")
            check_weights_only_loadable(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple, set, torch.Size):
        for index, item in enumerate(value):
            check_weights_only_loadable(item, f"{where}[{index}]")
        return
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise TypeError(
        f"{where} is a {kind}, which torch.load(weights_only=True) cannot read; store it as a "
        "Python number/str/list/dict or a tensor (e.g. float(x), x.tolist(), torch.as_tensor(x))"
    )


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> Path:
    """Write `checkpoint` to `path` atomically: a kill at any moment leaves the old file intact.

    The data goes to a hidden temp file beside `path` (`.<name>.<random>.tmp`, which no
    `*.pt` pattern matches), is flushed and fsynced, then `os.replace`d over `path`, and the
    directory is fsynced. On any error the temp file is removed and the error re-raised; a
    full disk raises DiskFullError naming the file, the checkpoint's size and the space free.
    """
    import torch

    path = Path(path)
    check_weights_only_loadable(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, expected_size=_tensor_bytes(checkpoint)) as handle:
        writer = _WriteErrorKeeper(handle)
        try:
            torch.save(checkpoint, writer)
        except Exception:
            if writer.error is None:
                raise
            raise writer.error from None  # the cause, instead of torch's "unexpected pos ..."
    return path


class _WriteErrorKeeper:
    """A file-like that forwards to `handle` and keeps the first OSError of a write.

    torch.save's zip writer swallows that error (a full disk) and raises a RuntimeError
    ("unexpected pos ...") instead; the kept error says what really happened.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._handle.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        self._handle.flush()


def _tensor_bytes(value: Any) -> int:
    """The bytes of every distinct tensor storage in `value`: about the size torch.save writes."""
    import torch

    storages: dict[tuple[str, int], int] = {}
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            storages[(str(item.device), storage.data_ptr())] = storage.nbytes()
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            pending.extend(item)
    return sum(storages.values())


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`, its tensors mapped to `map_location`.

    There is no fallback to unsafe loading. A missing, truncated or corrupt file, or one that
    is not a checkpoint of this template, raises CheckpointError naming the file.
    """
    return _load(Path(path), map_location=map_location, mmap=False)


def peek_checkpoint(path: Path) -> dict[str, Any]:
    """`load_checkpoint` on the CPU with tensor data memory-mapped, not read: cheap for
    looking at counters and metrics of large checkpoints. Same errors as `load_checkpoint`.
    """
    return _load(Path(path), map_location="cpu", mmap=True)


def _load(path: Path, *, map_location: Any, mmap: bool) -> dict[str, Any]:
    """`load_checkpoint` with torch.load's `mmap` option exposed."""
    import torch

    if not path.is_file():
        raise _unreadable(path, "does not exist", "check the path or the run name")
    not_an_archive = why_not_an_archive(path)
    if not_an_archive:
        raise _unreadable(path, not_an_archive, "delete it or resume from another checkpoint")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise _unreadable(path, why_load_failed(error), "delete it or resume from another checkpoint") from error
    if not isinstance(checkpoint, dict):
        raise _unreadable(path, f"not a checkpoint of this template (holds a {type(checkpoint).__name__})",
                          "point to a file written by this template")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise _unreadable(path, f"not a checkpoint of this template (missing keys: {', '.join(missing)})",
                          "point to a file written by this template")
    if checkpoint["format_version"] > FORMAT_VERSION:
        raise _unreadable(path, f"format version {checkpoint['format_version']} is newer than this code's "
                          f"{FORMAT_VERSION}", "update the code to load it")
    return checkpoint


def _unreadable(path: Path, reason: str, fix: str) -> UnreadableCheckpointError:
    """The error for a file that cannot be loaded; `reason` is one line without the path."""
    return UnreadableCheckpointError(f"checkpoint {path}: {reason}; {fix}", reason=reason)


def restore_checkpoint(
    checkpoint: dict[str, Any],
    *,
    model: "torch.nn.Module",  # noqa: F821
    optimizer: "torch.optim.Optimizer | None" = None,  # noqa: F821
    scheduler: Any | None = None,
    scaler: Any | None = None,
    restore_rng: bool = True,
) -> None:
    """Load the checkpoint's states into the given objects (the model through `unwrap_model`;
    a model sharded by FSDP keeps its shard of the full states, on every rank at once).

    Raises CheckpointError when the model does not fit the stored weights, a requested state
    (optimizer, scheduler, scaler) was not saved or does not fit its object. The weights are
    checked before any is copied, so a model they do not fit keeps its own.
    """
    bare = unwrap_model(model)
    detail = describe_mismatch(checkpoint["model"], bare.state_dict())
    try:
        if detail:
            raise RuntimeError(detail)
        load_model_state(model, checkpoint["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint weights do not fit the model {type(bare).__name__}: {detail or one_line(error)}; "
            "resume with the config the checkpoint was trained with"
        ) from error
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if target is None:
            continue
        if checkpoint[name] is None:
            raise CheckpointError(f"checkpoint has no {name} state; it was saved without a {name}")
        try:
            if target is optimizer:
                load_optimizer_state(model, optimizer, checkpoint[name])
            else:
                target.load_state_dict(checkpoint[name])
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint {name} state does not fit the {type(target).__name__}: {one_line(error)}; "
                "resume with the config the checkpoint was trained with"
            ) from error
    if restore_rng:
        restore_rng_state(checkpoint["rng"])
