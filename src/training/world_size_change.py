"""Resume a checkpoint saved by another number of ranks: finish the cut epoch, move the schedule.

A checkpoint's `extra.position` (see `training.epoch_position`) says how many positions of the
cut epoch's global permutation were trained and by how many ranks. On the same world size
nothing changes here and the resume stays bit-identical. On another world size the epoch goes on
from that position with the remaining samples sharded over the new ranks, and the learning-rate
schedule, which counts optimizer steps, is moved to the step of the new layout that sits at the
same point of the training (an epoch now has a different number of steps). The step counter
that metrics are logged at just goes on. The epoch totals need nothing: a checkpoint holds them
summed over every rank, and rank 0 carries them on (`EpochTotals.load_state_dict`).
"""

from typing import Any

from torch.optim.lr_scheduler import LambdaLR

from training.trainer import Trainer
from utils.errors import CheckpointError


def continue_on_world_size(trainer: Trainer, checkpoint: dict[str, Any]) -> list[str]:
    """Adapt a trainer loaded from `checkpoint` to this world size; returns notes for log.txt."""
    position = checkpoint["extra"].get("position")
    sampler = trainer.loaders.train_sampler
    if position is None or position["world_size"] == sampler.num_replicas:
        return []
    if position["dataset_size"] != len(sampler.dataset):
        raise CheckpointError(
            f"the checkpoint's training set had {position['dataset_size']} samples, this one has "
            f"{len(sampler.dataset)}: the position in the epoch cannot carry over"
        )
    trainer.state.epoch_start, trainer.state.batches_done = position["samples_done"], 0
    _move_schedule(trainer)
    return [
        f"world size changed from {position['world_size']} to {sampler.num_replicas} ranks: epoch "
        f"{trainer.state.epoch + 1} goes on with the {len(sampler.dataset) - position['samples_done']} samples "
        f"no rank has trained; this continuation cannot be bit-identical to an uninterrupted run "
        f"(other batches, other random draws)"
    ]


def _move_schedule(trainer: Trainer) -> None:
    """Put the schedule at the step of this layout where the cut epoch's remaining steps end it."""
    scheduler = trainer.scheduler
    if not isinstance(scheduler, LambdaLR):
        return
    sampler, batch_size = trainer.loaders.train_sampler, trainer.loaders.train.batch_size
    accumulate = trainer.config.accumulate_steps
    per_rank_full = sampler.num_samples  # an epoch started at position 0
    steps_full = _ceil(_ceil(per_rank_full, batch_size), accumulate)
    left = (len(sampler.dataset) - trainer.state.epoch_start) // sampler.num_replicas
    steps_left = _ceil(_ceil(left, batch_size), accumulate)
    step = max(0, (trainer.state.epoch + 1) * steps_full - steps_left)
    scheduler.last_epoch = step
    lrs = [base * factor(step) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(trainer.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
