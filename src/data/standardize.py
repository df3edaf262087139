"""Standardisation with the training split's statistics, kept so that figures can undo it."""

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Values = TypeVar("Values")  # a numpy array or a tensor: both support the arithmetic below


@dataclass(frozen=True)
class Standardizer:
    """One mean and one std, measured on the training split only (the val and test splits must not leak in)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, train: np.ndarray) -> "Standardizer":
        """The mean and std over every value of the training split."""
        return cls(float(train.mean()), float(train.std()))

    def apply(self, values: Values) -> Values:
        """Values with mean 0 and std 1 over the training split."""
        return (values - self.mean) / self.std

    def invert(self, values: Values) -> Values:
        """Standardised values back in their original range (to draw them)."""
        return values * self.std + self.mean
