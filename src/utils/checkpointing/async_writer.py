"""Checkpoints written off the training thread: snapshot the state now, write it in the background.

The training thread only copies the checkpoint's tensors (`snapshot`: to the CPU, pinned memory
for CUDA tensors) and hands the copy to one background thread, which saves it through the
`CheckpointManager` exactly as a synchronous save would: the metrics are flushed durably, then
each file is written to a temp file, fsynced and renamed. So a kill during a background write
leaves the previous files intact, and no checkpoint points past rows a kill could lose.

One write at a time: a new save first waits for the previous one. A failure of the background
write is raised on the training thread by the next `save` or by `wait`, never lost: the same
exception a synchronous save would have raised, so the CLI's exit code is the same too.
"""

import copy
import threading
from typing import Any

from utils.checkpointing.manager import CheckpointManager
from utils.logging import LOGGER, is_active


class AsyncCheckpointWriter:
    """`save` like `CheckpointManager.save`, but the files are written by a background thread.

    Call `wait` before anything reads the files (testing best.pt, exiting): it blocks until the
    pending write is done and raises its failure. The staging buffers of one snapshot are reused
    by the next (the write that read them is over by then), so only the first save allocates.
    """

    def __init__(self, manager: CheckpointManager) -> None:
        self.manager = manager
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._buffers: dict[tuple[str, int, int], Any] = {}  # (device, data_ptr, nbytes) -> CPU storage

    @property
    def best_metric(self) -> float | None:
        """The manager's best metric once the pending write is done (see `wait`)."""
        self.wait()
        return self.manager.best_metric

    def save(self, checkpoint: dict[str, Any], *, epoch_file: bool, metric: float | None = None) -> None:
        """Wait for the previous write (raising its failure), snapshot `checkpoint`, start writing it.

        Returns as soon as the snapshot is taken: training may then change every tensor the
        checkpoint referred to. `metric` and `epoch_file` mean what they mean for the manager.
        """
        self.wait()
        staged = self._snapshot(checkpoint)
        self._thread = threading.Thread(
            target=self._write, args=(staged, epoch_file, metric), name="checkpoint-writer",
            daemon=False,  # the interpreter joins it at exit even if a caller forgot `wait`
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending write is done; if it failed, raise its error here (the same
        exception a synchronous save would have raised, e.g. DiskFullError)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            error.add_note("raised by the background checkpoint writer (training.async_checkpoint)")
            raise error

    def _write(self, staged: dict[str, Any], epoch_file: bool, metric: float | None) -> None:
        try:
            self.manager.save(staged, epoch_file=epoch_file, metric=metric)
        except Exception as error:  # kept for the training thread, which raises it
            self._error = error

    def _snapshot(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """`snapshot` into this writer's staging buffers; buffers no tensor used any more are freed."""
        used: dict[tuple[str, int, int], Any] = {}
        staged = snapshot(checkpoint, self._buffers, used)
        self._buffers = used
        return staged


def snapshot(value: Any, buffers: dict | None = None, used: dict | None = None) -> Any:
    """A copy of `value` that later training steps cannot change: every tensor copied to the CPU.

    Dicts, lists and tuples are rebuilt (their exact types kept, so `torch.load(weights_only=True)`
    still reads the result); other values are deep-copied. Tensors sharing a storage (tied
    weights) still share one copy. CUDA tensors go to pinned memory, copied asynchronously and
    synchronised once at the end. `buffers` are CPU storages of an earlier snapshot to reuse,
    keyed by (device, data pointer, bytes); `used` receives the ones this snapshot used.
    """
    import torch

    buffers = {} if buffers is None else buffers
    used = {} if used is None else used
    result = _copy(value, buffers, used)
    if any(device.startswith("cuda") for device, _, _ in used):
        torch.cuda.synchronize()
    return result


def _copy(value: Any, buffers: dict, used: dict) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return _copy_tensor(value, buffers, used)
    if isinstance(value, dict) or type(value) in (list, tuple):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        copied = [(key, _copy(item, buffers, used)) for key, item in items]
        if isinstance(value, dict):
            return type(value)(copied)
        return type(value)(item for _, item in copied)
    return copy.deepcopy(value)


def _copy_tensor(tensor: "torch.Tensor", buffers: dict, used: dict) -> "torch.Tensor":  # noqa: F821
    """The tensor as a view of a CPU copy of its whole storage (copied once per storage)."""
    import torch

    storage = tensor.untyped_storage()
    key = (str(tensor.device), storage.data_ptr(), storage.nbytes())
    target = used.get(key)
    if target is None:
        target = buffers.get(key)
        if target is None:
            pin = tensor.device.type == "cuda"
            target = torch.empty(storage.nbytes(), dtype=torch.uint8, pin_memory=pin).untyped_storage()
        target.copy_(storage, non_blocking=tensor.device.type == "cuda")
        used[key] = target
    copied = torch.empty(0, dtype=tensor.dtype)
    return copied.set_(target, tensor.storage_offset(), tensor.size(), tensor.stride())


def wait_for_pending_write(saver: "CheckpointManager | AsyncCheckpointWriter", *, failing: bool = False) -> None:
    """Block until `saver`'s pending background write is done (a manager saves synchronously: no-op).

    Its failure is raised, unless another failure is already propagating (`failing`): then it
    is logged as an error instead, so that neither hides the other.
    """
    if not isinstance(saver, AsyncCheckpointWriter):
        return
    try:
        saver.wait()
    except Exception as error:
        if not failing:
            raise
        if is_active():
            LOGGER.error(f"writing the last checkpoint in the background failed: {type(error).__name__}: {error}")
