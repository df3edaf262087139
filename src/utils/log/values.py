"""Checks and conversions of what callers hand to the Logger, run on the caller's thread.

They must be cheap and must never synchronise a GPU: accelerator tensors are only copied
(queued on the device stream) and read later by the background thread.
"""

import sys
from typing import Any

from utils.log.writers.csv_writer import STEP_COLUMN

MAX_STEP = 2**63 - 1  # TensorBoard's and W&B's steps are int64


def key_error(key: Any) -> Exception:
    """The error for a metric or media name that is not a non-empty string."""
    if type(key) is not str:
        return TypeError(f"metric name {key!r} must be a non-empty string, got {type(key).__name__}")
    return ValueError("metric name must be a non-empty string, got ''")


def step_key_error() -> ValueError:
    """The error for a metric named like the CSV's step column, which would hide it."""
    return ValueError(
        f"metric name {STEP_COLUMN!r} is taken by the step column of metrics.csv (the step is "
        "log()'s second argument); rename the metric, e.g. 'train/step'"
    )


def check_step(step: Any, what: str) -> int:
    """`step` as an int in [0, MAX_STEP]; TypeError for non-integers (bools too), else ValueError."""
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise TypeError(f"{what} must be an integer, got {step!r} ({type(step).__name__})")
    step = int(step.__index__())
    if step < 0:
        raise ValueError(f"{what} {step} is negative; steps start at 0")
    if step > MAX_STEP:
        raise ValueError(f"{what} {step} is beyond 2**63 - 1, the largest step TensorBoard and W&B store")
    return step


def check_byte_budget(size: Any, what: str) -> int:
    """`size` as a positive int of bytes; TypeError for non-integers (bools too), ValueError if < 1."""
    if isinstance(size, bool) or not hasattr(size, "__index__"):
        raise TypeError(f"{what} must be an integer number of bytes, got {size!r} ({type(size).__name__})")
    size = int(size.__index__())
    if size < 1:
        raise ValueError(f"{what} must be at least 1 byte, got {size}; e.g. 256 * 2**20 for 256 MiB")
    return size


def to_number(key: str, value: Any) -> Any:
    """A Python number, or a detached copy of a one-element accelerator tensor (read later).

    CPU tensors are read at once (cheap, and a later in-place update cannot change the logged
    value); NumPy scalars and one-element arrays become Python numbers; bools become 0/1. A
    tensor without readable data (meta device, sparse) is refused here, not at the thread.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.is_meta or value.layout != torch.strided:
            kind = "on the meta device" if value.is_meta else f"of layout {value.layout}"
            raise TypeError(f"metric {key!r}: a tensor {kind} holds no value to log; log a dense tensor or a number")
        if value.numel() == 1 and value.is_cpu:
            number = value.item()
            if not isinstance(number, complex):
                return _plain(number)
        elif value.numel() == 1 and not value.is_complex():
            return value.detach().reshape(()).clone()  # queued on the device stream, no sync
        shape = tuple(value.shape)
        raise TypeError(f"metric {key!r}: expected a one-element real tensor, got {shape}, {value.dtype}")
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.generic, np.ndarray)) and value.size == 1:
        if value.dtype == bool or any(np.issubdtype(value.dtype, t) for t in (np.integer, np.floating)):
            return _plain(value.item())
    if isinstance(value, (int, float)):
        return _plain(value)
    raise TypeError(f"metric {key!r}: {type(value).__name__} value {value!r:.60} is not a number")


def _plain(number: int | float) -> int | float:
    return int(number) if isinstance(number, bool) else number


def image_copy(name: str, image: Any) -> Any:
    """A private copy of an image the caller's thread can check: TypeError for a value that is
    no image (naming the types accepted), ValueError for a shape or dtype that cannot be one.
    """
    if hasattr(image, "shape"):
        check_image(name, image)
        return snapshot(image)
    array = _image_array(name, image)  # PIL images and nested lists: already a new array
    check_image(name, array)
    return array


def _image_array(name: str, image: Any) -> Any:
    import numpy as np

    from utils.log.images import ACCEPTED_FORMS

    if hasattr(image, "savefig"):
        raise TypeError(f"image {name!r} is a matplotlib figure: log it with log_figure({name!r}, figure)")
    array = np.asarray(image)
    if array.ndim == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(
            f"image {name!r} is a {type(image).__name__}: expected a NumPy array or torch tensor of "
            f"shape {ACCEPTED_FORMS} (uint8, or floats in [0, 1]), or a PIL image in mode L or "
            "RGB; a matplotlib figure goes to log_figure"
        )
    return array


def check_image(name: str, image: Any) -> None:
    """ValueError naming the image when its shape or dtype cannot become an RGB picture."""
    import numpy as np

    from utils.log.images import ACCEPTED_FORMS, CHANNELS

    shape = tuple(getattr(image, "shape", ()))
    ok = (
        len(shape) == 2
        or (len(shape) == 3 and (shape[-1] in CHANNELS or shape[0] in CHANNELS))
        or (len(shape) == 4 and (shape[-1] in CHANNELS or shape[1] in CHANNELS))
    )
    if not ok or 0 in shape:
        raise ValueError(f"image {name!r} has unsupported shape {shape}: expected {ACCEPTED_FORMS}")
    dtype = getattr(image, "dtype", None)
    if isinstance(image, np.ndarray) and not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise ValueError(f"image {name!r} has dtype {dtype}: expected uint8, or floats in [0, 1]")


def snapshot(data: Any) -> Any:
    """A private copy, so the caller may reuse its buffer; no device sync for tensors."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(data, torch.Tensor):
        return data.detach().clone()
    import numpy as np

    return np.array(data, copy=True)
