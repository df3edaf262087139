"""The digits task: a small CNN classifies scikit-learn's bundled 8x8 digits (1,797 images, no download).

This file is the glue, with `config/default.json`: its config keys, the loss and metrics of a
batch, and what evaluation draws. The data comes from `data/` (the images, a seeded split, the
standardisation) and the model from `models/digits_cnn.py`. Copy it to start your own task.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from data.digits_images import DIGITS_IMAGES, load_digits_arrays
from data.splits import split_indices, split_sizes
from data.standardize import Standardizer
from models.digits_cnn import DigitsCNN
from training.task import Datasets, StepOutput, Task, register_task
from utils.config_fields import option
from visualization.visualizations import confusion_matrix, mistakes_first, plot_confusion_matrix, plot_prediction_grid

CLASS_NAMES = [str(i) for i in range(10)]


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


@register_task
class DigitsTask(Task):
    """Classification: cross entropy, accuracy, a confusion matrix and a grid of predictions."""

    name = "digits"
    config_sections = (DigitsData, DigitsModel)
    metrics = {"loss": "min", "accuracy": "max"}

    def build_datasets(self) -> Datasets:
        """Seeded split, standardised with the training split's mean and std (kept for drawing)."""
        data = self.section(DigitsData)
        images, labels = load_digits_arrays()
        parts = split_indices(len(labels), data.val_fraction, data.test_fraction, self.context.seed)
        self.standardizer = Standardizer.fit(images[parts["train"]])
        normalised = torch.from_numpy(self.standardizer.apply(images))  # (N, 1, 8, 8)
        targets = torch.from_numpy(labels)  # (N,)
        return Datasets(**{split: TensorDataset(normalised[index], targets[index]) for split, index in parts.items()})

    def build_model(self) -> nn.Module:
        model = self.section(DigitsModel)
        return DigitsCNN(model.channels, model.hidden, model.dropout, num_classes=len(CLASS_NAMES))

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        images, labels = batch
        logits = model(images)  # (B, 10)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return StepOutput(F.cross_entropy(logits, labels), len(labels), {"accuracy": accuracy})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        images, labels = batch
        logits = model(images)  # (B, 10)
        return {
            "loss": F.cross_entropy(logits, labels, reduction="sum").double(),
            "count": torch.tensor(len(labels), device=labels.device),
            "confusion": confusion_matrix(labels, logits.argmax(dim=1), len(CLASS_NAMES)),  # (10, 10)
        }

    def summarize(self, sums: dict[str, Tensor], split: str, step: int) -> dict[str, float]:
        count = sums["count"].item()
        return {"loss": sums["loss"].item() / count, "accuracy": sums["confusion"].trace().item() / count}

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: Any) -> Tensor:
        """Class ids (N,) of raw 8x8 images with values 0..16 (as `sklearn.datasets.load_digits`
        gives them), shaped (N, 8, 8), (N, 1, 8, 8) or (N, 64): scaled and standardised as in training."""
        device = next(model.parameters()).device
        pixels = torch.as_tensor(inputs, dtype=torch.float32).reshape(-1, 1, 8, 8)  # (N, 1, 8, 8)
        images = self.standardizer.apply(pixels / 16.0).to(device)  # the same float32 steps as build_datasets
        return model(images).argmax(dim=1)  # (N,)

    def state_dict(self) -> dict[str, Any]:
        """The training split's mean and std, so that `predict` needs no data set."""
        return {"mean": self.standardizer.mean, "std": self.standardizer.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.standardizer = Standardizer(float(state["mean"]), float(state["std"]))

    def draw(self, model: nn.Module, batch: Any, sums: dict[str, Tensor], split: str, step: int) -> dict[str, Any]:
        """The confusion matrix, and a grid of predictions with the mistakes first."""
        images, labels = batch
        predictions = model(images).argmax(dim=1)
        order = mistakes_first(labels, predictions)[:32]
        shown = self.standardizer.invert(images[order].cpu())  # back in [0, 1]
        return {
            "confusion_matrix": plot_confusion_matrix(sums["confusion"].cpu().numpy(), CLASS_NAMES),
            "predictions": plot_prediction_grid(shown, labels[order], predictions[order], CLASS_NAMES),
        }
