"""The digits task: a small CNN classifies scikit-learn's bundled 8x8 digits (1,797 images, no download).

The whole task is this file plus `config/default.json`: its config keys, the data, the model,
the loss and metrics of a batch, and what evaluation draws. Copy it to start your own task.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from models.util_modules import MLP, ConvBlock
from training.task import Datasets, StepOutput, Task, register_task
from utils.config_fields import option

CLASS_NAMES = [str(i) for i in range(10)]
DIGITS_IMAGES = 1797  # rows of scikit-learn's digits.csv.gz: the splits are checked without reading it


@dataclass(frozen=True, kw_only=True)
class DigitsData:
    SECTION: ClassVar[str] = "data"
    val_fraction: float = option(0.15, "share of the images held out for validation", gt=0, lt=1)
    test_fraction: float = option(0.15, "share of the images held out for the test", gt=0, lt=1)

    def __post_init__(self) -> None:
        split_sizes(DIGITS_IMAGES, self.val_fraction, self.test_fraction)  # a bad split fails at init


@dataclass(frozen=True, kw_only=True)
class DigitsModel:
    SECTION: ClassVar[str] = "model"
    channels: list[int] = option([32, 64], "channels of the two conv blocks", gt=0,
                                 check=(lambda v: len(v) == 2, "two positive integers"))
    hidden: int = option(128, "width of the MLP head's hidden layer", gt=0)
    dropout: float = option(0.1, "dropout in the MLP head", ge=0, lt=1)


class DigitsCNN(nn.Module):
    """Two conv blocks, one 2x2 pool, an MLP head: ~150k parameters, >97% test accuracy."""

    def __init__(self, channels: list[int], hidden: int, dropout: float, num_classes: int = len(CLASS_NAMES)):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            ConvBlock(1, c1, kernel_size=3),  # (B, c1, 8, 8)
            ConvBlock(c1, c2, kernel_size=3),  # (B, c2, 8, 8)
            nn.MaxPool2d(2),  # (B, c2, 4, 4)
            nn.Flatten(),  # (B, c2 * 16)
        )
        self.head = MLP(c2 * 16, [hidden], num_classes, dropout=dropout)  # (B, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 1, 8, 8) -> logits (B, num_classes)."""
        return self.head(self.features(images))


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


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many of `n` images go to validation and to the test; ValueError naming the keys when
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


@register_task
class DigitsTask(Task):
    """Classification: cross entropy, accuracy, a confusion matrix and a grid of predictions."""

    name = "digits"
    config_sections = (DigitsData, DigitsModel)
    metrics = {"loss": "min", "accuracy": "max"}

    def build_datasets(self) -> Datasets:
        """Seeded split, normalised with the training set's mean and std (kept for drawing)."""
        data = self.section(DigitsData)
        images, labels = load_digits_arrays()
        parts = split_indices(len(labels), data.val_fraction, data.test_fraction, self.context.seed)
        self.mean = float(images[parts["train"]].mean())
        self.std = float(images[parts["train"]].std())
        normalised = torch.from_numpy((images - self.mean) / self.std)  # (N, 1, 8, 8)
        targets = torch.from_numpy(labels)  # (N,)
        return Datasets(**{split: TensorDataset(normalised[index], targets[index]) for split, index in parts.items()})

    def build_model(self) -> nn.Module:
        model = self.section(DigitsModel)
        return DigitsCNN(model.channels, model.hidden, model.dropout)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        images, labels = batch
        logits = model(images)  # (B, 10)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return StepOutput(F.cross_entropy(logits, labels), len(labels), {"accuracy": accuracy})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        images, labels = batch
        logits = model(images)  # (B, 10)
        predictions = logits.argmax(dim=1)  # (B,)
        classes = len(CLASS_NAMES)
        return {
            "loss": F.cross_entropy(logits, labels, reduction="sum").double(),
            "count": torch.tensor(len(labels), device=labels.device),
            "confusion": torch.bincount(labels * classes + predictions, minlength=classes**2).view(classes, classes),
        }

    def summarize(self, sums: dict[str, Tensor], split: str, step: int) -> dict[str, float]:
        count = sums["count"].item()
        return {"loss": sums["loss"].item() / count, "accuracy": sums["confusion"].trace().item() / count}

    def draw(self, model: nn.Module, batch: Any, sums: dict[str, Tensor], split: str, step: int) -> dict[str, Any]:
        """The confusion matrix, and a grid of predictions with the mistakes first."""
        from visualization.visualizations import mistakes_first, plot_confusion_matrix, plot_prediction_grid

        images, labels = batch
        predictions = model(images).argmax(dim=1)
        order = mistakes_first(labels, predictions)[:32]
        shown = images[order].cpu() * self.std + self.mean  # un-normalised to [0, 1]
        return {
            "confusion_matrix": plot_confusion_matrix(sums["confusion"].cpu().numpy(), CLASS_NAMES),
            "predictions": plot_prediction_grid(shown, labels[order], predictions[order], CLASS_NAMES),
        }
