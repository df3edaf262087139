"""Image grids and PNG files for plots and task drawings.

Conversion of a tensor, array or figure into an (H, W, 3) uint8 image lives with the Logger in
utils.log.images (the same forms are accepted when an image is logged); torch, matplotlib and
PIL are imported only inside the functions that need them.
"""

from pathlib import Path
from typing import Any

import numpy as np

from utils.fileio import atomic_write_bytes
from utils.log.images import (
    batch_to_nhwc, image_to_hwc, png_bytes, scale_batch, tile_images, to_numpy, to_rgb, to_uint8_image,
)


def make_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile a batch, (N, C, H, W), (N, H, W, C) or a list of equal-size images, into one image.

    `nrow` images per row (as in torchvision); floats are scaled jointly over the batch, so
    the tiles stay comparable. Returns (rows * (H + p) + p, cols * (W + p) + p, 3) uint8.
    """
    if isinstance(images, (list, tuple)):
        batch = np.stack([image_to_hwc(to_numpy(img)) for img in images])
    else:
        batch = batch_to_nhwc(to_numpy(images))
    return tile_images(to_rgb(scale_batch(batch)), nrow, padding, pad_value)  # (N, H, W, 3) tiled


def save_png(path: Path | str, image: Any) -> None:
    """Write any image `to_uint8_image` accepts as a PNG, atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png_bytes(to_uint8_image(image)))
