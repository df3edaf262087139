"""The example's data: the bundled digits, a seeded split, normalisation, worker set-up."""

import signal

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from data.digits import build_dataloaders, init_loader_worker, load_digits_arrays, split_indices

DATA_CONFIG = {"dataset": "digits", "val_fraction": 0.15, "test_fraction": 0.15, "batch_size": 64, "num_workers": 0}


def test_digits_are_the_bundled_1797_images_in_unit_range():
    images, labels = load_digits_arrays()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_split_is_seeded_disjoint_and_complete():
    first, again, other = split_indices(1797, 0.15, 0.15, 0), split_indices(1797, 0.15, 0.15, 0), split_indices(1797, 0.15, 0.15, 1)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["train"], other["train"])
    joined = np.concatenate([first["train"], first["val"], first["test"]])
    assert sorted(joined.tolist()) == list(range(1797))
    assert len(first["val"]) == len(first["test"]) == 270


@pytest.mark.parametrize("val, test", [(0.0, 0.1), (0.6, 0.5), (1.2, 0.1)])
def test_split_rejects_fractions_that_do_not_fit(val, test):
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(100, val, test, 0)


def test_training_data_is_normalised_with_training_statistics():
    loaders = build_dataloaders(DATA_CONFIG, seed=0)
    train = torch.cat([images for images, _ in loaders.train])
    assert abs(train.mean().item()) < 1e-4
    assert abs(train.std().item() - 1.0) < 1e-2
    assert len(loaders.train.dataset) + len(loaders.val.dataset) + len(loaders.test.dataset) == 1797


def test_shuffle_depends_only_on_seed_and_epoch():
    """What makes a resumed run see exactly the batches an uninterrupted run sees."""
    def first_batch(epoch: int) -> torch.Tensor:
        loaders = build_dataloaders(DATA_CONFIG, seed=0)
        loaders.train_sampler.set_epoch(epoch)
        return next(iter(loaders.train))[1]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))


def test_ranks_see_disjoint_shards_of_every_split():
    shards = [build_dataloaders(DATA_CONFIG, seed=0, rank=r, world_size=2) for r in (0, 1)]
    for split in ("val", "test"):
        seen = [list(iter(s.__dict__[split].sampler)) for s in shards]
        assert not set(seen[0]) & set(seen[1])
        assert len(seen[0]) + len(seen[1]) == len(shards[0].__dict__[split].dataset)
    trained = [set(iter(s.train_sampler)) for s in shards]
    assert not trained[0] & trained[1]


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
