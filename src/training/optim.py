"""Optimizer and per-step learning-rate schedule built from the config."""

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def build_optimizer(model: nn.Module, optimizer_config: dict) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum 0.9) with the configured learning rate and weight decay."""
    name, lr, decay = optimizer_config["name"], optimizer_config["lr"], optimizer_config["weight_decay"]
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=decay)
    raise ValueError(f"optimizer.name={name!r} is unknown: use 'adamw' or 'sgd'")


def build_scheduler(
    optimizer: torch.optim.Optimizer, scheduler_config: dict, steps_per_epoch: int, epochs: int
) -> LambdaLR:
    """Linear warm-up over `warmup_epochs`, then cosine decay to 0 (or constant), per step."""
    name = scheduler_config["name"]
    warmup = scheduler_config["warmup_epochs"] * steps_per_epoch
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
