"""Where the loop is in an epoch's data, in terms any number of ranks can resume from.

Every epoch draws one global permutation of the training set from (seed, epoch), whatever the
world size; rank r of W trains positions r, r+W, r+2W, ... of it. Ranks move in lockstep, so
after each rank has trained k samples the epoch has consumed exactly the first k*W positions of
the permutation: a prefix. A checkpoint stores that prefix's length (`samples_done`) and the
world size. Resumed on the same world size, the loop skips its own batches as before and the
continuation is bit-identical. Resumed on another world size, the epoch's REMAINING positions are
sharded over the new ranks, so no sample of the epoch is trained twice and none is skipped (but
for fewer than W samples at its end, which `drop_last` leaves out of every epoch anyway).

The position knows nothing about how the model is wrapped (DDP, FSDP, one process).
"""

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, DistributedSampler


class EpochSampler(DistributedSampler):
    """A `DistributedSampler` (shuffled, drop_last) that can start an epoch at a position of its
    global permutation. Started at 0 it yields exactly what `DistributedSampler` yields."""

    def __init__(self, dataset: Dataset, rank: int, world_size: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0  # positions of this epoch's permutation trained before (by any world size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        if not self.start:
            return super().__iter__()
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)  # the permutation DistributedSampler draws
        order = torch.randperm(len(self.dataset), generator=generator).tolist()[self.start:]
        usable = len(order) // self.num_replicas * self.num_replicas  # equal steps on every rank
        return iter(order[self.rank:usable:self.num_replicas])

    def __len__(self) -> int:
        return self._per_rank(self.start)

    def _per_rank(self, start: int) -> int:
        """Samples each rank trains in an epoch started at `start`."""
        return self.num_samples if not start else (len(self.dataset) - start) // self.num_replicas

    def position(self, start: int, batches_done: int, batch_size: int) -> dict[str, Any]:
        """The checkpoint's `extra.position` once every rank has trained `batches_done` batches of
        an epoch started at `start`: what any world size needs to finish the epoch.
        `samples_done` is the whole dataset once the epoch's batches are all done."""
        per_rank = batches_done * batch_size
        done = len(self.dataset) if per_rank >= self._per_rank(start) else start + per_rank * self.num_replicas
        return {"world_size": self.num_replicas, "epoch_start": start, "samples_done": done,
                "dataset_size": len(self.dataset)}
