"""The linear regression y = x1 + x2 that the distributed tests' toy tasks build on: its model,
evaluation and loss. Each test's subclass brings its data and its training step (a rank that
sleeps, a rank that counts the samples it saw) and registers itself."""

from typing import Any

import torch
from torch import Tensor, nn

from training.task import Task


class SumToy(Task):
    metrics = {"loss": "min"}

    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1)

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        return {"sse": ((model(x) - y) ** 2).sum(), "count": torch.tensor(len(y))}

    def summarize(self, sums: dict[str, Tensor]) -> dict[str, float]:
        return {"loss": sums["sse"].item() / sums["count"].item()}
