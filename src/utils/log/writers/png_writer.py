"""Logged images as PNG files: `visualizations/<sanitised name>_step<step>.png`."""

from pathlib import Path

import numpy as np

from utils.fileio import atomic_write_bytes
from utils.log.images import png_bytes
from utils.log.writers.base import Writer
from utils.names import sanitize_name


def image_file_name(name: str, step: int) -> str:
    """'val/samples', 120 -> 'val_samples_step00000120.png' (sorts by step in a file browser)."""
    return f"{sanitize_name(name)}_step{step:08d}.png"


class PngWriter(Writer):
    """Saves every logged image (and figure) atomically under one folder, which the runs module
    created with the run (`visualizations/`)."""

    name = "png"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def write_image(self, name: str, image: np.ndarray, step: int) -> None:
        """`image` is (H, W, 3) uint8, converted by the logging thread."""
        atomic_write_bytes(self.folder / image_file_name(name, step), png_bytes(image))
