"""scikit-learn's bundled 8x8 digits (1,797 images, no download), read without importing sklearn."""

import importlib.util
from pathlib import Path

import numpy as np

DIGITS_IMAGES = 1797  # rows of scikit-learn's digits.csv.gz: the splits are checked without reading it


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) float32 in [0, 1] and labels (N,) int64.

    Read straight from the CSV that scikit-learn ships (rows of 64 pixels in 0..16, then the
    label): importing sklearn itself costs about 1.5 s per process, most of a tiny run's start.
    """
    table = np.loadtxt(digits_csv(), delimiter=",", dtype=np.float32)  # (N, 65)
    images = (table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)  # (N, 1, 8, 8)
    return images, table[:, -1].astype(np.int64)


def digits_csv() -> Path:
    """scikit-learn's bundled `digits.csv.gz`, located without importing the package."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits task reads scikit-learn's bundled data: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-learn's digits data is not at {path}; reinstall scikit-learn")
    return path
