"""The engine's loaders: a data order that depends only on (seed, epoch), exact shards, quiet workers."""

import os
import signal
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from training.data_loading import LoaderConfig, build_loaders, close_loaders, init_loader_worker
from training.task import Datasets

WORKER_EXIT_DEADLINE_S = 5.0


def numbered(n: int) -> TensorDataset:
    """Sample i is (i, i % 3): a batch's first tensor names the samples it holds."""
    index = torch.arange(n)
    return TensorDataset(index, index % 3)


def numbered_splits(train: int = 50, val: int = 13, test: int = 11) -> Datasets:
    """Odd split sizes, so that padding or a dropped sample would show."""
    return Datasets(numbered(train), numbered(val), numbered(test))


def samples_seen(loader: DataLoader) -> list[int]:
    """The sample numbers one pass over the loader yields, in order."""
    return [i for indices, _ in loader for i in indices.tolist()]


def test_training_order_depends_only_on_seed_and_epoch():
    """What makes a resumed run see exactly the batches an uninterrupted run sees."""
    config = LoaderConfig(batch_size=8, num_workers=0)

    def training_order(seed: int, epoch: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)  # the global RNG state must not matter
        loaders = build_loaders(numbered_splits(), config, seed=seed)
        loaders.train_sampler.set_epoch(epoch)
        return samples_seen(loaders.train)

    order = training_order(seed=0, epoch=3, global_seed=1)
    assert order == training_order(seed=0, epoch=3, global_seed=2)
    assert sorted(order) == list(range(50))
    assert order != training_order(seed=0, epoch=4, global_seed=1)
    assert order != training_order(seed=1, epoch=3, global_seed=1)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_see_disjoint_shards_of_every_split(world_size: int):
    config = LoaderConfig(batch_size=4, num_workers=0)
    datasets = numbered_splits()
    shards = [build_loaders(datasets, config, seed=0, rank=rank, world_size=world_size) for rank in range(world_size)]
    for split in ("val", "test"):  # sharded without padding: every sample exactly once
        seen = [samples_seen(getattr(loaders, split)) for loaders in shards]
        assert sorted(i for shard in seen for i in shard) == list(range(len(getattr(datasets, split)))), split
    for loaders in shards:
        loaders.train_sampler.set_epoch(2)
    trained = [samples_seen(loaders.train) for loaders in shards]
    assert len({len(shard) for shard in trained}) == 1  # the same number of steps on every rank
    flat = [i for shard in trained for i in shard]
    assert len(flat) == len(set(flat)) == 50 - 50 % world_size  # disjoint; only the remainder dropped


class _SignalDispositions(Dataset):
    """Reports, from inside the worker process, how SIGINT and SIGTERM are handled there."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        ignored = [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]
        return torch.tensor(ignored)


def test_loader_workers_ignore_sigint_and_sigterm():
    loader = DataLoader(_SignalDispositions(), batch_size=1, num_workers=1, worker_init_fn=init_loader_worker)
    assert all(batch.all() for batch in loader)
    assert signal.getsignal(signal.SIGINT) != signal.SIG_IGN  # the main process is untouched


class _WorkerPids(Dataset):
    """Every sample is the pid of the process that loaded it."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return os.getpid()


def pids_of_one_pass(loaders) -> set[int]:
    return {pid for loader in (loaders.train, loaders.val, loaders.test) for batch in loader for pid in batch.tolist()}


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_close_loaders_stops_persistent_workers_and_loaders_still_iterate():
    """Workers ignore SIGTERM, so without close_loaders a finished run would never exit."""
    loaders = build_loaders(Datasets(_WorkerPids(), _WorkerPids(), _WorkerPids()),
                            LoaderConfig(batch_size=2, num_workers=1), seed=0)
    try:
        workers = pids_of_one_pass(loaders)
        assert len(workers) == 3 and os.getpid() not in workers  # one persistent worker per loader
        close_loaders(loaders)
        deadline = time.monotonic() + WORKER_EXIT_DEADLINE_S
        while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if is_running(pid)]
        close_loaders(loaders)  # idempotent
        restarted = pids_of_one_pass(loaders)
        assert len(restarted) == 3 and not restarted & workers
    finally:
        close_loaders(loaders)
