"""Reusable building blocks: MLP, conv block, residual wrapper, per-point linear, shape helpers.

Activations and norms are named by strings (`"relu"`, `"batch"`) so configs can choose them.
"""

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


def build_activation(name: str) -> nn.Module:
    """A fresh activation module from its name (see `ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def build_norm_1d(name: str | None, features: int) -> nn.Module:
    """Norm over the last dim of (B, F): None, 'batch' or 'layer'."""
    if name is None:
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm1d(features)
    if name == "layer":
        return nn.LayerNorm(features)
    raise ValueError(f"unknown norm {name!r} for an MLP: choose None, 'batch' or 'layer'")


def build_norm_2d(name: str | None, channels: int, groups: int = 8) -> nn.Module:
    """Norm over the channels of (B, C, H, W): None, 'batch', 'group' or 'instance'."""
    if name is None:
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {name!r} for a conv block: choose None, 'batch', 'group' or 'instance'")


class MLP(nn.Sequential):
    """(B, in_features) -> (B, out_features) through hidden layers of the given widths.

    Each hidden layer is linear -> norm -> activation -> dropout; the output layer is a plain
    linear map, so the MLP ends in logits or raw values. `hidden=[]` is a single linear layer.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
    ):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [
                nn.Linear(width, size),  # (B, size)
                build_norm_1d(norm, size),
                build_activation(activation),
                nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            ]
            width = size
        layers.append(nn.Linear(width, out_features))  # (B, out_features)
        super().__init__(*layers)


class ConvBlock(nn.Sequential):
    """(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride): conv, norm, activation.

    The default padding keeps the spatial size for odd kernels at stride 1; the conv has no
    bias when a norm follows (the norm's shift makes it redundant).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | None = None,
        norm: str | None = "batch",
        activation: str = "relu",
    ):
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2 if padding is None else padding,
                bias=norm is None,
            ),
            build_norm_2d(norm, out_channels),
            build_activation(activation),
        )


class Residual(nn.Module):
    """x + block(x), with an optional projection when the block changes the shape."""

    def __init__(self, block: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.block = block
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.block(x)


class PointWiseLinear(nn.Module):
    """(B, P, in_features) -> (B, P, out_features) with a separate linear map per point.

    Equivalent to P independent `nn.Linear`s, computed in one einsum. Weights and biases are
    drawn from uniform(-1/sqrt(in_features), 1/sqrt(in_features)), the bound `nn.Linear` uses.
    """

    def __init__(self, num_points: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.num_points = num_points
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(num_points, out_features, in_features))  # (P, out, in)
        self.bias = nn.Parameter(torch.empty(num_points, out_features)) if bias else None  # (P, out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(in), 1/sqrt(in)) for weights and biases, as in `nn.Linear`."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.num_points, self.in_features):
            raise ValueError(
                f"PointWiseLinear expects (B, {self.num_points}, {self.in_features}), got {tuple(x.shape)}"
            )
        out = torch.einsum("bpi,poi->bpo", x, self.weight)  # (B, P, out)
        if self.bias is not None:
            out = out + self.bias  # (P, out) broadcast over B
        return out

    def extra_repr(self) -> str:
        return (
            f"num_points={self.num_points}, in_features={self.in_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class Reshape(nn.Module):
    """(B, *) -> (B, *shape): reshape everything after the batch dim."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Permute(nn.Module):
    """Reorder all dims, e.g. Permute(0, 2, 3, 1) turns (B, C, H, W) into (B, H, W, C)."""

    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


# torch's own flatten already is the shape helper we want: (B, d1, d2, ...) -> (B, d1 * d2 * ...).
Flatten = nn.Flatten
