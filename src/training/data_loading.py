"""The engine's data loaders: built from a task's Datasets, shut down on every path.

The engine owns the loaders because it owns the guarantees that depend on them: the training
sampler is a `DistributedSampler` even in one process, so the order depends only on (seed,
epoch) and a resumed run skips exactly the batches it already trained; evaluation shards
without padding, so summed metrics are exact across ranks; workers ignore SIGINT/SIGTERM so a
signal reaches only the main process, which saves a checkpoint.

Persistent workers live as long as their loader's iterator. At interpreter exit,
multiprocessing stops its daemonic children with SIGTERM and joins them, but the workers ignore
SIGTERM: the join never returns and a finished run never exits. `close_loaders` shuts them down.
"""

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.utils.data import DataLoader, Dataset

from training.epoch_position import EpochSampler
from training.task import Datasets
from utils.config_fields import option
from utils.helper_functions import seed_worker


@dataclass(frozen=True, kw_only=True)
class LoaderConfig:
    """The engine's keys of the `data` section (a task adds its own beside them)."""

    SECTION: ClassVar[str] = "data"
    batch_size: int = option(64, "samples per batch on each rank", gt=0)
    num_workers: int = option(0, "DataLoader worker processes per rank (0: load in the main process)", ge=0)


@dataclass
class Loaders:
    """Train/val/test loaders and the training sampler the loop reshuffles every epoch."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    train_sampler: EpochSampler


def init_loader_worker(worker_id: int) -> None:
    """Seed the worker and let SIGINT/SIGTERM reach only the main process, so it can save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed_worker(worker_id)


class ShardedEvalSampler(torch.utils.data.Sampler[int]):
    """Every rank gets indices rank, rank+world, ...: no padding, so summed metrics are exact."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_loaders(datasets: Datasets, config: LoaderConfig, seed: int, rank: int = 0, world_size: int = 1) -> Loaders:
    """Loaders over the task's splits. Under DDP the training sampler drops the few samples
    that would leave ranks with different numbers of steps; a partial last batch is kept."""
    train_sampler = EpochSampler(datasets.train, rank, world_size, seed)

    def loader(dataset: Dataset, sampler: Any) -> DataLoader:
        workers = config.num_workers
        return DataLoader(
            dataset, batch_size=config.batch_size, sampler=sampler, num_workers=workers,
            collate_fn=datasets.collate_fn, worker_init_fn=init_loader_worker if workers else None,
            generator=torch.Generator().manual_seed(seed), persistent_workers=workers > 0,
        )

    return Loaders(
        train=loader(datasets.train, train_sampler),
        val=loader(datasets.val, ShardedEvalSampler(len(datasets.val), rank, world_size)),
        test=loader(datasets.test, ShardedEvalSampler(len(datasets.test), rank, world_size)),
        train_sampler=train_sampler,
    )


def close_loaders(loaders: Loaders) -> None:
    """Stop the worker processes of every loader; idempotent.

    Uses the iterator's own shutdown (the one its finaliser would run), then drops the
    iterator, so a later `iter(loader)` starts fresh workers.
    """
    for loader in (loaders.train, loaders.val, loaders.test):
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        loader._iterator = None
