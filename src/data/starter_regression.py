"""The starter task's data: a noisy smooth function of Gaussian inputs, generated from a seed."""

import torch
from torch import Tensor


def make_regression(samples: int, features: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    """Inputs (N, features) and targets (N, 1) of y = sin(2 x.w) + x.v / 2 + noise, drawn from `seed`.

    The function's weights come from seed 0 whatever `seed` is: every run fits the same function.
    """
    weights = torch.randn(2, features, generator=torch.Generator().manual_seed(0)) / features**0.5  # (2, F)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, features, generator=generator)  # (N, F)
    projected = inputs @ weights.T  # (N, 2)
    targets = torch.sin(2 * projected[:, :1]) + projected[:, 1:] / 2  # (N, 1)
    return inputs, targets + noise * torch.randn(samples, 1, generator=generator)
