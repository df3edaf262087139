"""The records the Logger queues for its thread, and what the thread does to a batch of them.

A record is a tuple whose first item is its kind. Before writing a batch, the thread reads
accelerator tensors in one transfer per device and dtype (so a GPU is synchronised there, never
on the training thread) and joins the SCALARS records of one step.
"""

import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

SCALARS, IMAGE, HISTOGRAM, TEXT, CONFIG, ADD_WRITER, FLUSH, CLOSE = range(8)


def media_bytes(item: tuple) -> int:
    """Memory a record's payload holds (host or device): its nbytes; 0 for other records."""
    kind = item[0]
    if kind == IMAGE or kind == HISTOGRAM:
        return int(item[2].nbytes)
    if kind == TEXT:
        return sys.getsizeof(item[2])
    return 0


def convert_device_tensors(batch: deque[tuple], on_error: Callable[[Exception, str], None]) -> None:
    """Replace accelerator tensors in SCALARS records by numbers, one transfer per group.

    A group that cannot be read is reported to `on_error(exc, where)` and left out; the values
    logged with it (other groups, plain numbers) are still written.
    """
    groups: dict[tuple, list[tuple[dict, str]]] = {}
    for item in batch:
        if item[0] == SCALARS and item[3]:
            for key, value in item[2].items():
                if type(value) not in (int, float):
                    groups.setdefault((value.device, value.dtype), []).append((item[2], key))
    if not groups:
        return
    torch = sys.modules["torch"]
    for (device, _), slots in groups.items():
        try:
            values = torch.stack([metrics[key] for metrics, key in slots]).tolist()  # (n,)
        except Exception as exc:
            names = ", ".join(sorted({repr(key) for _, key in slots}))
            on_error(exc, f"reading metric {names} (on {device}; the other values were written)")
            for metrics, key in slots:
                del metrics[key]
            continue
        for (metrics, key), number in zip(slots, values):
            metrics[key] = number


def merge_steps(batch: deque[tuple]) -> None:
    """Join consecutive SCALARS records of one step in place, so each writer sees the step once."""
    merged: list[tuple] = []
    for item in batch:
        last = merged[-1] if merged else None
        if item[0] == SCALARS and last is not None and last[0] == SCALARS and last[1] == item[1]:
            last[2].update(item[2])  # the dicts are the logger's own copies
            continue
        merged.append(item)
    batch.clear()
    batch.extend(merged)


def to_float_array(values: Any) -> np.ndarray:
    """A histogram's values as a flat float64 array (a tensor is copied to the host here)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)
