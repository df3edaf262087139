"""The starter task: a seeded regression that the engine trains through its real CLIs."""

import pytest
import torch
from matplotlib.figure import Figure

from conftest import run_script
from tasks.starter import StarterTask
from training.run_config import parse_run_config
from training.task import TaskContext
from utils.configs import load_config_template


def starter_task(seed: int = 0) -> StarterTask:
    config = parse_run_config(load_config_template("starter")).parsed
    return StarterTask(TaskContext(config=config, seed=seed, device=torch.device("cpu")))


def test_the_data_is_seeded_and_the_splits_have_the_configured_sizes():
    first, again, other = (starter_task(seed).build_datasets() for seed in (0, 0, 1))
    assert (len(first.train), len(first.val), len(first.test)) == (2048, 256, 256)
    assert torch.equal(first.train.tensors[0], again.train.tensors[0])
    assert not torch.equal(first.train.tensors[0], other.train.tensors[0])
    assert not torch.equal(first.val.tensors[0][:8], first.test.tensors[0][:8])


def test_metrics_are_the_mean_squared_and_absolute_error_and_draw_returns_a_figure():
    task = starter_task()
    batch = (torch.zeros(4, 8), torch.tensor([[1.0], [-1.0], [2.0], [0.0]]))
    model = torch.nn.Linear(8, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()  # predicts 0 everywhere
    metrics = task.summarize(task.eval_step(model, batch))
    assert metrics == {"loss": (1 + 1 + 4 + 0) / 4, "mae": (1 + 1 + 2 + 0) / 4}
    assert isinstance(task.draw(model, batch, {})["predictions"], Figure)


@pytest.mark.slow
def test_its_config_trains_and_beats_predicting_the_mean():
    """The MSE of predicting the mean is the targets' variance (0.73 for seed 0): training must beat it."""
    created = run_script("01_initialize.py", "-e", "start", "-r", "first", "-c", "starter",
                         "--set", "training.draw_every=null", "--set", "logging.wandb=false",
                         "--set", "training.epochs=5")
    assert created.returncode == 0, created.stderr
    trained = run_script("02_train.py", "-e", "start", "-r", "first", "--device", "cpu", timeout=240)
    assert trained.returncode == 0, trained.stderr
    test_loss = float(trained.stdout.split("test/loss: ")[1].split()[0])
    assert test_loss < 0.5, trained.stdout
