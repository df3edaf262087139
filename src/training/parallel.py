"""How the model is spread over the ranks under torchrun: replicated by DDP or sharded by FSDP2.

`training.parallel` chooses. `"ddp"` keeps a whole copy of the weights, gradients and optimizer
state on every rank and averages the gradients. `"fsdp"` calls `fully_shard` on the units the
task names (`Task.shard_units`) and then on the root, so each rank holds 1/N of them and
gathers a unit's weights only while it computes. In one process neither wraps anything.

What else changes under FSDP lives here too: the precision becomes FSDP's
`MixedPrecisionPolicy` (see `training.precision`), gradient clipping measures the norm of the
sharded gradients over every rank, the micro-batches of an accumulation skip the gradient
reduction, and buffers (BatchNorm's statistics), which FSDP never synchronises, are taken from
rank 0 before an evaluation, as DDP does before every forward. Checkpoints hold the full state
in the plain layout either way (`utils.sharded_state`).
"""

import contextlib
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn

from training.precision import Precision
from utils.distributed_info import get_world_size
from utils.errors import ConfigValueError
from utils.helper_functions import unwrap_model
from utils.sharded_state import is_sharded

Parallel = Literal["ddp", "fsdp"]


def check_parallel(parallel: Parallel, precision: Precision) -> None:
    """ConfigValueError (exit 2) for a combination FSDP cannot train, checked at start."""
    if parallel == "fsdp" and precision == "fp16" and get_world_size() > 1:
        raise ConfigValueError(
            "training.parallel='fsdp' with training.precision='fp16': the GradScaler cannot unscale "
            "sharded gradients; use 'bf16' (no loss scaling needed) or parallel='ddp'"
        )


def parallelize(
    model: nn.Module, parallel: Parallel, precision: Precision, device: torch.device, units: Iterable[nn.Module],
) -> nn.Module:
    """The model to train: wrapped in DDP, or sharded in place by FSDP2, or (one process) as it is.

    `model` may be `torch.compile`d: FSDP shards the bare model inside it, so the compiled
    wrapper keeps calling the sharded one.
    """
    if get_world_size() <= 1:
        return model
    if parallel == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    dtype = {"bf16": torch.bfloat16}.get(precision)
    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    # the root hands back float32 outputs, so the task's loss is computed in full precision
    root_policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32, output_dtype=torch.float32)
    for unit in units:
        fully_shard(unit, mp_policy=policy)
    fully_shard(unwrap_model(model), mp_policy=root_policy)
    return model


def gradient_sync(model: nn.Module, steps_now: bool) -> AbstractContextManager:
    """The context of a micro-batch's backward: the gradient reduction over ranks runs only on
    the micro-batch that steps the optimizer (DDP's `no_sync`, FSDP's `set_requires_gradient_sync`)."""
    if is_sharded(model):
        unwrap_model(model).set_requires_gradient_sync(steps_now)
        return contextlib.nullcontext()
    if steps_now or not isinstance(model, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def clip_gradients(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their global 2-norm is at most `max_norm`; returns that norm.

    Sharded gradients are DTensors: their norm is a DTensor too, made a plain tensor of the
    norm over every rank's shard before the gradients are scaled by it.
    """
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in parameters])
    if is_sharded(model):
        norm = norm.full_tensor()
    nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)
    return norm


def share_buffers_of_rank_0(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm's running statistics) to every rank of a sharded model.

    DDP does this before every forward; FSDP never does, so each rank's statistics drift on
    its own batches. Done before an evaluation, every rank evaluates, and every checkpoint
    holds, what DDP would have: rank 0's statistics.
    """
    if not is_sharded(model):
        return
    for buffer in unwrap_model(model).buffers():
        dist.broadcast(buffer, src=0)
