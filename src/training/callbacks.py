"""Epoch callbacks: a seam for code that drives a run from outside (a sweep pruning a trial).

A callback is `callback(epoch, history) -> reason | None`, called on rank 0 after every evaluated
epoch with the number of completed epochs and the latest means and validation metrics
(`{"train/epoch_loss": ..., "val/loss": ..., ...}`). A returned reason stops the training at that
epoch boundary as early stopping does: the checkpoint and summary.json keep the reason, and the
run counts as finished. A reason given after the last epoch stops nothing and is not kept: the
run has trained every epoch.
"""

from collections.abc import Callable, Sequence

import torch

from training.distributed import any_rank
from utils.distributed_info import is_main_process

EpochCallback = Callable[[int, dict[str, float]], str | None]

OTHER_RANK_REASON = "stopped by an epoch callback on rank 0"  # what ranks > 0 record


def ask_callbacks(
    callbacks: Sequence[EpochCallback], epoch: int, history: dict[str, float], device: torch.device,
) -> str | None:
    """The first reason a callback gave to stop (every callback is called), or None.

    Rank 0 asks them; under torchrun its decision reaches every rank through one collective, so
    all ranks stop at the same epoch. Without callbacks nothing runs and no collective is made.
    """
    if not callbacks:
        return None
    reason = None
    if is_main_process():
        for callback in callbacks:
            answer = callback(epoch, dict(history))
            reason = reason if reason is not None else answer
    if any_rank(reason is not None, device) and reason is None:
        reason = OTHER_RANK_REASON
    return reason
