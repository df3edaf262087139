"""Turn tensors, arrays and figures into (H, W, 3) uint8 RGB images, and images into PNG bytes.

The Logger checks images against these forms on the caller's thread and converts them on its
background thread, so torch, matplotlib and PIL are imported only inside the functions that
need them.

Layout rule for 3-D input: a last dim in {1, 3} means HWC; otherwise a first dim in {1, 3}
means CHW. So (3, 32, 32) is CHW, (32, 32, 3) is HWC and the ambiguous (3, 5, 3) is HWC.
4-D input is a batch, (N, C, H, W) or (N, H, W, C) by the same rule on its last three dims.
"""

import io
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

CHANNELS = (1, 3)
ACCEPTED_FORMS = "(H, W), (C, H, W), (H, W, C) with C in {1, 3}, or a batch (N, C, H, W) / (N, H, W, C)"


def to_uint8_image(
    image: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Convert a tensor or array into an (H, W, 3) uint8 RGB image; a batch becomes a grid.

    Floats are un-normalised with `mean`/`std` (per channel) first, then mapped to 0..255 from
    `value_range`; None picks [0, 1], [-1, 1] or the data's min..max, whichever fits. uint8
    passes through unchanged; other integers that fit 0..255 are taken as pixel values; bool
    is black/white. A batch of one is that image (no grid border). Raises ValueError for any
    other shape.
    """
    array = to_numpy(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 4:
        return tile_images(to_rgb(scale_batch(batch_to_nhwc(array), mean, std, value_range)), padding=2)
    hwc = image_to_hwc(array)
    return to_rgb(scale_batch(hwc[None], mean, std, value_range)[0])


def tile_images(batch: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile an (N, H, W, 3) uint8 batch, `nrow` images per row, into one (H', W', 3) image."""
    if nrow < 1 or padding < 0:
        raise ValueError(f"make_grid needs nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    count, height, width, _ = batch.shape
    cols = min(nrow, count)
    rows = -(-count // cols)
    grid = np.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, 3),
        pad_value,
        dtype=np.uint8,
    )
    for index in range(count):
        top = padding + (index // cols) * (height + padding)
        left = padding + (index % cols) * (width + padding)
        grid[top : top + height, left : left + width] = batch[index]
    return grid


def figure_to_array(fig: Any) -> np.ndarray:
    """Render a matplotlib figure to an (H, W, 3) uint8 array; the figure is always closed."""
    try:
        canvas = fig.canvas
        if not hasattr(canvas, "buffer_rgba"):
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3]
    finally:
        _close_figure(fig)


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image encoded as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def to_numpy(image: Any) -> np.ndarray:
    """A tensor (any device, detached) or array-like as a NumPy array of numbers."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return tensor.numpy()
    array = np.asarray(image)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"expected numbers (a tensor or numeric array), got dtype {array.dtype}")
    return array


def _close_figure(fig: Any) -> None:
    # A figure made by pyplot stays registered until closed; if pyplot was never imported the
    # figure cannot be registered, so there is nothing to release and pyplot stays unloaded.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _shape_error(shape: tuple[int, ...]) -> ValueError:
    return ValueError(f"unsupported image shape {tuple(shape)}: expected {ACCEPTED_FORMS}")


def image_to_hwc(array: np.ndarray) -> np.ndarray:
    """(H, W), (C, H, W) or (H, W, C) -> (H, W, C); ValueError naming the accepted forms."""
    if array.ndim == 2:
        return array[:, :, None]  # (H, W) -> (H, W, 1)
    if array.ndim == 3:
        if array.shape[-1] in CHANNELS:
            return array
        if array.shape[0] in CHANNELS:
            return np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
    raise _shape_error(array.shape)


def batch_to_nhwc(array: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, H, W, C) -> (N, H, W, C); ValueError naming the accepted forms."""
    if array.ndim == 4 and array.shape[0] > 0:
        if array.shape[-1] in CHANNELS:
            return array
        if array.shape[1] in CHANNELS:
            return np.moveaxis(array, 1, -1)  # (N, C, H, W) -> (N, H, W, C)
    raise _shape_error(array.shape)


def scale_batch(
    batch: np.ndarray,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """(N, H, W, C) of any dtype -> uint8, scaled jointly over the whole batch."""
    if batch.dtype == np.uint8:
        return batch
    if batch.dtype == bool:
        return batch.astype(np.uint8) * 255
    plain = mean is None and std is None and value_range is None
    if plain and np.issubdtype(batch.dtype, np.integer) and batch.min() >= 0 and batch.max() <= 255:
        return batch.astype(np.uint8)
    values = batch.astype(np.float64)
    channels = values.shape[-1]
    if std is not None:
        values = values * _per_channel(std, channels, "std")
    if mean is not None:
        values = values + _per_channel(mean, channels, "mean")
    low, high = value_range if value_range is not None else _auto_range(values)
    if high <= low:
        high = low + 1.0
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8)


def _per_channel(values: Sequence[float], channels: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size not in (1, channels):
        raise ValueError(f"{name} has {array.size} values but the image has {channels} channels")
    return array


def _auto_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    if low >= -1.0 and high <= 1.0:
        return -1.0, 1.0
    return low, high


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(..., 1) or (..., 3) -> (..., 3)."""
    if images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    return images
