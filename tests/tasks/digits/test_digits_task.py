"""The digits task: its split and standardisation of the data, its model, metrics and figures."""

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from data.digits_images import load_digits_arrays
from data.splits import split_indices
from tasks.digits import DigitsTask
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


def test_the_task_splits_the_1797_images_by_its_fractions(built):
    _, datasets = built
    assert (len(datasets.train), len(datasets.val), len(datasets.test)) == (1257, 270, 270)


def test_training_data_is_normalised_with_training_statistics(built):
    task, datasets = built
    images, _ = load_digits_arrays()
    train_raw = images[split_indices(1797, 0.15, 0.15, 0)["train"]]
    standardizer = task.standardizer
    assert (standardizer.mean, standardizer.std) == pytest.approx((float(train_raw.mean()), float(train_raw.std())))
    train = datasets.train.tensors[0]
    assert abs(train.mean().item()) < 1e-4
    assert abs(train.std().item() - 1.0) < 1e-2


def test_the_task_builds_a_model_with_ten_logits():
    assert default_task().build_model()(torch.randn(5, 1, 8, 8)).shape == (5, 10)


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
