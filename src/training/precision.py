"""Mixed precision from `training.precision`: the autocast context and, for fp16, the GradScaler.

`fp32` changes nothing. `bf16` runs forward passes (training and evaluation) under autocast to
bfloat16 on the CPU or CUDA; its exponent range is fp32's, so gradients need no loss scaling.
`fp16` autocasts to float16 on CUDA only, with a GradScaler against gradient underflow; the
scaler's state goes into every checkpoint so a resumed run scales its losses as the original.

Under FSDP (`training.parallel = "fsdp"`) `bf16` is FSDP's `MixedPrecisionPolicy` instead of
autocast: each unit's weights are gathered in bfloat16, gradients are reduced in float32, and
the model's outputs come back in float32 (see `training.parallel`). `fp16` is refused there:
the GradScaler cannot unscale sharded gradients.
"""

import contextlib
from contextlib import AbstractContextManager
from typing import Literal

import torch

from utils.errors import ConfigValueError

Precision = Literal["fp32", "bf16", "fp16"]
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: Precision, device: torch.device) -> None:
    """ConfigValueError (exit 2) when the device cannot train in `precision`: checked at start."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigValueError(
            f"training.precision='fp16' needs a CUDA device (float16 autocast with a GradScaler); "
            f"this run trains on {device.type}: use 'bf16' or 'fp32' on the CPU"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigValueError(
            "training.precision='bf16': this GPU has no bfloat16 support; use 'fp16' or 'fp32'"
        )


class MixedPrecision:
    """The autocast context, the backward pass and the optimizer step of one precision."""

    def __init__(self, precision: Precision, device: torch.device, sharded: bool = False) -> None:
        self.precision = precision
        self.dtype = None if sharded else DTYPES[precision]  # a sharded model casts its own weights
        self.device_type = device.type
        # the session allows fp16 on CUDA only (check_precision); the scaler itself works anywhere
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def autocast(self) -> AbstractContextManager:
        """A fresh context for a forward pass: autocast to the dtype, or nothing under fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale, so that clipping sees their true norm."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step; under fp16 skipped when a gradient overflowed, and the scale updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
