"""Evaluation of a task over a (possibly sharded) split, exact across ranks, and its drawings."""

import contextlib
import inspect
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from training.distributed import all_reduce_sum
from training.parallel import share_buffers_of_rank_0
from training.task import Task
from utils.distributed_info import is_main_process
from utils.helper_functions import move_to_device, unwrap_model
from utils.sharded_state import is_sharded
from utils.logging import LOGGER

HALF_DTYPES = (torch.float16, torch.bfloat16)


@dataclass
class Evaluation:
    """The task's metrics over the whole split, the sums they came from, and a sample batch."""

    metrics: dict[str, float]
    sums: dict[str, torch.Tensor]
    sample: Any  # this rank's first batch, on the device


@torch.no_grad()
def evaluate(
    task: Task, model: nn.Module, loader: DataLoader, device: torch.device,
    autocast: AbstractContextManager | None = None, *, split: str, step: int,
) -> Evaluation:
    """Sum `task.eval_step` over this rank's shard, then over all ranks, then summarize.

    `autocast` is the training's precision context (see `training.precision`); half-precision
    sums are kept in float32, since adding many values in bfloat16 would lose the metric.
    `split` ("val" or "test") and `step` go to `summarize`, so that what a task logs itself
    lands in its split's column at the step of the split's metrics.
    """
    was_training = model.training
    model.eval()
    share_buffers_of_rank_0(model)
    sums: dict[str, torch.Tensor] = {}
    sample = None
    missing = _missing_batches(len(loader), device) if is_sharded(model) else 0
    with autocast or contextlib.nullcontext():
        for batch in loader:
            batch = move_to_device(batch, device)
            for name, value in task.eval_step(model, batch).items():
                value = torch.as_tensor(value, device=device).detach()
                if value.dtype in HALF_DTYPES:
                    value = value.float()
                sums[name] = sums[name] + value if name in sums else value.clone()
            if sample is None:
                sample = batch
        for _ in range(missing):  # discarded: forwards the other ranks' collectives wait for
            task.eval_step(model, sample)
    for name in sorted(sums):  # the same order on every rank
        all_reduce_sum(sums[name], "the evaluation's sums")
    model.train(was_training)
    metrics = call_with_split(task.summarize, sums, split=split, step=step)
    if set(metrics) != set(task.metrics):
        raise ValueError(
            f"task {task.name!r}: summarize() returned {sorted(metrics)}, but the task declares "
            f"metrics = {tuple(task.metrics)}; make them match"
        )
    return Evaluation({name: float(metrics[name]) for name in task.metrics}, sums, sample)


def _missing_batches(batches: int, device: torch.device) -> int:
    """How many fewer batches this rank's shard has than the largest: a sharded model's forward
    is a collective, so every rank runs as many (the shards differ by one sample at most)."""
    most = torch.tensor(batches, device=device)
    torch.distributed.all_reduce(most, op=torch.distributed.ReduceOp.MAX)
    return int(most.item()) - batches


def log_drawings(split: str, task: Task, model: nn.Module, evaluation: Evaluation, step: int) -> None:
    """What `task.draw` returns, logged as `<split>/<name>` on rank 0 (figures or images).

    A sharded model's forward needs every rank, so under FSDP every rank draws its own sample
    (and rank 0 alone logs); otherwise rank 0 draws alone, with the bare model.
    """
    sharded = is_sharded(model)
    if not (is_main_process() or sharded) or evaluation.sample is None:
        return
    from matplotlib.figure import Figure

    plain = unwrap_model(model)  # a DDP forward on one rank alone would wait for the others
    was_training = plain.training
    plain.eval()
    with torch.no_grad():
        drawings = call_with_split(task.draw, plain, evaluation.sample, evaluation.sums, split=split, step=step)
    plain.train(was_training)
    if not is_main_process():  # it drew to take part in the sharded forwards: nothing to log
        pyplot = sys.modules.get("matplotlib.pyplot")  # loaded by whoever drew a figure
        for drawing in drawings.values():
            if pyplot is not None and isinstance(drawing, Figure):
                pyplot.close(drawing)
        return
    for name, drawing in drawings.items():
        if isinstance(drawing, Figure):
            LOGGER.log_figure(f"{split}/{name}", drawing, step)
        else:
            LOGGER.log_image(f"{split}/{name}", drawing, step)


def call_with_split(method: Callable[..., Any], *args: Any, split: str, step: int) -> Any:
    """`task.summarize` or `task.draw` called with the split and the step after its arguments;
    a task written before they were passed (`summarize(self, sums)`) is called without them."""
    try:
        inspect.signature(method).bind(*args, split, step)
    except TypeError:
        return method(*args)
    return method(*args, split, step)
