"""The starter task: a small MLP fits a noisy function of generated inputs (no download, seconds on a CPU).

A project generated without the examples keeps this task so that `make train` and `make test` work
from the first minute; it is the file to copy when you bring your own task (config/starter.json).
It is the glue: its config keys, the loss, the metrics and what it draws; the data comes from
`data/starter_regression.py` and the model is `models/util_modules.py`'s MLP.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from data.starter_regression import make_regression
from models.util_modules import MLP
from training.task import Datasets, StepOutput, Task, register_task
from utils.config_fields import option


@dataclass(frozen=True, kw_only=True)
class StarterData:
    SECTION: ClassVar[str] = "data"
    features: int = option(8, "input features of each sample", gt=0)
    train_samples: int = option(2048, "samples in the training split", gt=0)
    val_samples: int = option(256, "samples in the validation split", gt=0)
    test_samples: int = option(256, "samples in the test split", gt=0)
    noise: float = option(0.1, "std of the Gaussian noise added to the targets", ge=0)


@dataclass(frozen=True, kw_only=True)
class StarterModel:
    SECTION: ClassVar[str] = "model"
    hidden: int = option(64, "width of the MLP's hidden layer", gt=0)


@register_task
class StarterTask(Task):
    """Regression: mean squared error, mean absolute error, a plot of predictions against targets."""

    name = "starter"
    config_sections = (StarterData, StarterModel)
    metrics = ("loss", "mae")

    def build_datasets(self) -> Datasets:
        """One seeded draw cut into train/val/test (the same on every rank)."""
        data = self.section(StarterData)
        total = data.train_samples + data.val_samples + data.test_samples
        inputs, targets = make_regression(total, data.features, data.noise, self.context.seed)
        cuts = [data.train_samples, data.val_samples, data.test_samples]
        splits = [TensorDataset(x, y) for x, y in zip(inputs.split(cuts), targets.split(cuts))]
        return Datasets(*splits)

    def build_model(self) -> nn.Module:
        return MLP(self.section(StarterData).features, [self.section(StarterModel).hidden], 1)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        inputs, targets = batch
        return StepOutput(F.mse_loss(model(inputs), targets), len(targets))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        inputs, targets = batch
        error = model(inputs) - targets  # (B, 1)
        return {"squared": (error**2).sum().double(), "absolute": error.abs().sum().double(),
                "count": torch.tensor(len(targets), device=targets.device)}

    def summarize(self, sums: dict[str, Tensor]) -> dict[str, float]:
        count = sums["count"].item()
        return {"loss": sums["squared"].item() / count, "mae": sums["absolute"].item() / count}

    def draw(self, model: nn.Module, batch: Any, sums: dict[str, Tensor]) -> dict[str, Any]:
        """Predictions against targets for one batch: on the diagonal when the fit is good."""
        from matplotlib.figure import Figure

        inputs, targets = batch
        predictions = model(inputs).detach().cpu().flatten()  # (B,)
        figure = Figure(figsize=(4, 4), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        axes.scatter(targets.cpu().flatten(), predictions, s=6)
        low, high = float(targets.min()), float(targets.max())
        axes.plot([low, high], [low, high], color="grey", linewidth=1)
        axes.set(xlabel="target", ylabel="prediction")
        return {"predictions": figure}
