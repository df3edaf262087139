"""Seeded train/val/test splits of a dataset held in memory: the same indices on every rank."""

import numpy as np


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many of `n` samples go to validation and to the test; ValueError naming the keys when
    a split would be empty."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n_val + n_test >= n:
        raise ValueError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} leave no "
            f"training images of the {n}: make their sum smaller than 1"
        )
    for key, fraction, size in (("val_fraction", val_fraction, n_val), ("test_fraction", test_fraction, n_test)):
        if size == 0:
            raise ValueError(
                f"data.{key}={fraction} holds out 0 of the {n} images: raise it to at least {1 / n:.2g} (one image)"
            )
    return n_val, n_test


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded permutation cut into train/val/test index arrays (the same for every rank)."""
    n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    order = np.random.default_rng(seed).permutation(n)
    return {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
