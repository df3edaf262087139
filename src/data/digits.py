"""The worked example's data: scikit-learn's bundled digits (1,797 8x8 images, no download).

Replace this module with your own data set; the training loop only needs `build_dataloaders`.
"""

import signal
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from utils.helper_functions import seed_worker

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)
CLASS_NAMES = [str(i) for i in range(NUM_CLASSES)]


@dataclass
class DigitsLoaders:
    """Train/val/test loaders plus what the loop needs to reshuffle and to un-normalise."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    train_sampler: DistributedSampler
    mean: float
    std: float


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) float32 in [0, 1] and labels (N,) int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    return images, bunch.target.astype(np.int64)


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """A seeded permutation cut into train/val/test index arrays (the same for every rank)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction}: "
            "each must lie in (0, 1) and their sum below 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return {
        "val": order[:n_val],
        "test": order[n_val : n_val + n_test],
        "train": order[n_val + n_test :],
    }


def init_loader_worker(worker_id: int) -> None:
    """Seed the worker and let SIGINT/SIGTERM reach only the main process, so it can save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed_worker(worker_id)


class ShardedEvalSampler(torch.utils.data.Sampler[int]):
    """Every rank gets indices rank, rank+world, ...: no padding, so summed metrics are exact."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _loader(dataset: Dataset, sampler, batch_size: int, workers: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=init_loader_worker if workers else None,
        generator=generator,
        persistent_workers=workers > 0,
    )


def build_dataloaders(
    data_config: dict, seed: int, rank: int = 0, world_size: int = 1
) -> DigitsLoaders:
    """Seeded split, normalisation with the training set's statistics, and loaders.

    The training sampler is a `DistributedSampler` even in a single process: its permutation
    depends only on (seed, epoch), so a resumed run sees exactly the batches it would have.
    """
    images, labels = load_digits_arrays()
    parts = split_indices(len(labels), data_config["val_fraction"], data_config["test_fraction"], seed)
    mean = float(images[parts["train"]].mean())
    std = float(images[parts["train"]].std())
    normalised = torch.from_numpy((images - mean) / std)  # (N, 1, 8, 8)
    targets = torch.from_numpy(labels)  # (N,)
    datasets = {k: TensorDataset(normalised[idx], targets[idx]) for k, idx in parts.items()}

    batch_size, workers = data_config["batch_size"], data_config["num_workers"]
    train_sampler = DistributedSampler(
        datasets["train"], num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    return DigitsLoaders(
        train=_loader(datasets["train"], train_sampler, batch_size, workers, seed),
        val=_loader(datasets["val"], ShardedEvalSampler(len(datasets["val"]), rank, world_size),
                    batch_size, workers, seed),
        test=_loader(datasets["test"], ShardedEvalSampler(len(datasets["test"]), rank, world_size),
                     batch_size, workers, seed),
        train_sampler=train_sampler,
        mean=mean,
        std=std,
    )
