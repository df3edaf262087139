"""Optimizer and per-step learning-rate schedule built from the config."""

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from utils.config_fields import option


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    SECTION: ClassVar[str] = "optimizer"
    name: Literal["adamw", "sgd"] = option("adamw", "AdamW, or SGD with momentum 0.9")
    lr: float = option(0.003, "peak learning rate (after warm-up)", gt=0)
    weight_decay: float = option(0.0001, "decoupled (AdamW) or L2 (SGD) weight decay", ge=0)


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    SECTION: ClassVar[str] = "scheduler"
    name: Literal["cosine", "constant"] = option("cosine", "after warm-up: cosine decay to 0, or constant")
    warmup_epochs: int = option(1, "epochs of linear warm-up, stepped every step", ge=0)


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum 0.9) with the configured learning rate and weight decay."""
    name, lr, decay = config.name, config.lr, config.weight_decay
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=decay)
    raise ValueError(f"optimizer.name={name!r} is unknown: use 'adamw' or 'sgd'")


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, steps_per_epoch: int, epochs: int
) -> LambdaLR:
    """Linear warm-up over `warmup_epochs`, then cosine decay to 0 (or constant), per step."""
    name = config.name
    warmup = config.warmup_epochs * steps_per_epoch
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    if name not in ("cosine", "constant"):
        raise ValueError(f"scheduler.name={name!r} is unknown: use 'cosine' or 'constant'")
    return LambdaLR(optimizer, factor)
