"""The digits example: the bundled images, a seeded split, normalisation, the CNN, metrics, figures."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from tasks.digits import DigitsCNN, DigitsTask, load_digits_arrays, split_indices
from training.run_config import parse_run_config
from training.task import Datasets, TaskContext
from utils.configs import load_config_template


def default_task() -> DigitsTask:
    config = parse_run_config(load_config_template("default")).parsed
    return DigitsTask(TaskContext(config=config, seed=0, device=torch.device("cpu")))


@pytest.fixture(scope="module")
def built() -> tuple[DigitsTask, Datasets]:
    """The default task after build_datasets (which also sets the mean and std draw uses)."""
    task = default_task()
    return task, task.build_datasets()


class OneHotOfLabels(nn.Module):
    """A perfect classifier for `images_encoding` batches: pixel (0, 0) holds the label."""

    def forward(self, images: Tensor) -> Tensor:
        return 20.0 * F.one_hot(images[:, 0, 0, 0].long(), 10).float()  # (B, 10)


def images_encoding(labels: Tensor) -> Tensor:
    return labels.float().view(-1, 1, 1, 1).expand(-1, 1, 8, 8)  # (B, 1, 8, 8)


def test_digits_are_the_bundled_1797_images_in_unit_range():
    images, labels = load_digits_arrays()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))


def test_digits_read_from_the_csv_equal_scikit_learns_own_loader():
    from sklearn.datasets import load_digits

    images, labels = load_digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images[:, 0] * 16.0, bunch.images.astype(np.float32))
    assert np.array_equal(labels, bunch.target)


def test_split_is_seeded_disjoint_and_complete(built):
    first, again, other = (split_indices(1797, 0.15, 0.15, seed) for seed in (0, 0, 1))
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["train"], other["train"])
    joined = np.concatenate([first["train"], first["val"], first["test"]])
    assert sorted(joined.tolist()) == list(range(1797))
    _, datasets = built
    assert (len(datasets.train), len(datasets.val), len(datasets.test)) == (1257, 270, 270)


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (0.6, 0.5), (0.9, 0.3)])
def test_split_rejects_fractions_whose_sum_reaches_one(val, test):
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(100, val, test, 0)


def test_training_data_is_normalised_with_training_statistics(built):
    task, datasets = built
    images, _ = load_digits_arrays()
    train_raw = images[split_indices(1797, 0.15, 0.15, 0)["train"]]
    assert task.mean == pytest.approx(float(train_raw.mean())) and task.std == pytest.approx(float(train_raw.std()))
    train = datasets.train.tensors[0]
    assert abs(train.mean().item()) < 1e-4
    assert abs(train.std().item() - 1.0) < 1e-2


def test_digits_cnn_maps_images_to_ten_logits():
    images = torch.randn(5, 1, 8, 8)
    assert DigitsCNN([4, 8], hidden=16, dropout=0.0)(images).shape == (5, 10)
    assert default_task().build_model()(images).shape == (5, 10)


def test_a_perfect_prediction_scores_accuracy_one():
    task, model = default_task(), OneHotOfLabels()
    batches = [torch.arange(10), torch.tensor([3, 3, 7, 0, 9])]
    sums: dict[str, Tensor] = {}
    for labels in batches:  # summed over batches the way the engine sums them
        for name, value in task.eval_step(model, (images_encoding(labels), labels)).items():
            sums[name] = sums[name] + value if name in sums else value
    metrics = task.summarize(sums, "val", 0)
    assert metrics["accuracy"] == 1.0
    assert metrics["loss"] == pytest.approx(0.0, abs=1e-6)
    assert sums["count"].item() == 15 and torch.equal(sums["confusion"].diagonal(), torch.bincount(torch.cat(batches), minlength=10))


def test_draw_returns_a_confusion_matrix_and_a_prediction_grid(built):
    task, datasets = built
    model = task.build_model().eval()
    batch = datasets.val[:16]
    with torch.no_grad():
        drawings = task.draw(model, batch, task.eval_step(model, batch), "val", 0)
    assert set(drawings) == {"confusion_matrix", "predictions"}
    assert all(isinstance(figure, Figure) for figure in drawings.values())
