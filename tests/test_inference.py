"""load_trained and the task's state on a task the engine has never seen: a regression defined in this
file that standardises its inputs and keeps the mean and std as its state. One run, trained once
in this process for the module, is loaded, predicted on and evaluated again."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from training.checkpoint_evaluation import evaluate_checkpoint
from training.inference import load_trained, read_run_config
from training.run_config import parse_run_config
from training.session import run_session
from training.task import Datasets, StepOutput, Task, TaskContext, register_task
from utils.checkpointing.io import load_checkpoint, save_checkpoint
from utils.config_fields import option
from utils.errors import CheckpointError, ConfigValueError, RunNotFoundError
from utils.logging import LOGGER
from utils.management import create_run
from utils.runs.run import Run

WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])  # (4, 1)


@dataclass(frozen=True, kw_only=True)
class ScaledData:
    SECTION: ClassVar[str] = "data"
    samples: int = option(192, "points x ~ N(5, 3^2), y = x.w + noise", gt=0)


def raw_points(seed: int, samples: int) -> tuple[Tensor, Tensor]:
    """Raw inputs (N, 4) far from standardised, and targets (N, 1)."""
    generator = torch.Generator().manual_seed(seed)
    x = 5.0 + 3.0 * torch.randn(samples, 4, generator=generator)
    return x, x @ WEIGHTS + 0.1 * torch.randn(samples, 1, generator=generator)


@register_task
class ScaledToy(Task):
    """A linear regression on inputs standardised with the training split's mean and std (its state)."""

    name = "toy_scaled"
    config_sections = (ScaledData,)
    metrics = {"loss": "min", "mae": "min"}

    def build_datasets(self) -> Datasets:
        x, y = raw_points(self.context.seed, self.section(ScaledData).samples)
        cut = len(x) * 2 // 3
        self.mean, self.std = x[:cut].mean(dim=0), x[:cut].std(dim=0)  # (4,), (4,)
        z = (x - self.mean) / self.std
        return Datasets(TensorDataset(z[:cut], y[:cut]), TensorDataset(z[cut:], y[cut:]), TensorDataset(z[cut:], y[cut:]))

    def build_model(self) -> nn.Module:
        return nn.Linear(4, 1)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        return StepOutput(nn.functional.mse_loss(model(x), y), len(y))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        error = model(x) - y  # (B, 1)
        return {"sse": (error**2).sum().double(), "sae": error.abs().sum().double(), "count": torch.tensor(len(y))}

    def summarize(self, sums: dict[str, Tensor], split: str, step: int) -> dict[str, float]:
        count = sums["count"].item()
        LOGGER.log({f"{split}/samples": count}, step)  # a task may log more itself (see Task.summarize)
        return {"loss": sums["sse"].item() / count, "mae": sums["sae"].item() / count}

    def predict(self, model: nn.Module, inputs: Any) -> Tensor:
        return model((torch.as_tensor(inputs) - self.mean) / self.std)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std = state["mean"], state["std"]


CONFIG = {
    "task": "toy_scaled", "seed": 5,
    "data": {"batch_size": 16},
    "optimizer": {"lr": 0.05},
    "training": {"epochs": 3, "checkpoint_every": 1, "best_metric": "val/mae", "draw_every": None},
    "logging": {"tensorboard": False, "wandb": False},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """toy/scaled trained for 3 epochs in this process; returns the experiments root."""
    root = tmp_path_factory.mktemp("inference") / "experiments"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root))
        run = Run.resolve("toy", "scaled")
        create_run("toy", "scaled", dict(CONFIG))
        assert run_session(run, parse_run_config(dict(CONFIG)), torch.device("cpu"), resume=False).exit_code == 0
    return root


@pytest.fixture
def run(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(trained))
    return trained / "toy" / "scaled"


def _trained_task_state() -> dict[str, Tensor]:
    task = ScaledToy(TaskContext(parse_run_config(dict(CONFIG)).parsed, CONFIG["seed"], torch.device("cpu")))
    task.build_datasets()
    return task.state_dict()


def test_every_checkpoint_holds_the_tasks_state(run):
    expected = _trained_task_state()
    for path in sorted((run / "checkpoints").glob("*.pt")):
        state = load_checkpoint(path)["task_state"]
        assert set(state) == {"mean", "std"} and all(torch.equal(state[k], expected[k]) for k in expected), path.name


def test_load_trained_gives_the_model_in_eval_mode_with_the_checkpoints_weights_and_counters(run):
    loaded = load_trained("toy", "scaled", checkpoint="last")
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    assert not loaded.model.training and loaded.config.task is ScaledToy
    assert all(torch.equal(value, checkpoint["model"][name]) for name, value in loaded.model.state_dict().items())
    assert (loaded.epoch, loaded.step, loaded.path) == (3, checkpoint["global_step"], run / "checkpoints" / "last.pt")
    assert all(torch.equal(loaded.task.state_dict()[k], v) for k, v in _trained_task_state().items())


def test_load_trained_builds_no_data_set_and_predicts_as_the_model_did_in_training(run, monkeypatch):
    x, _ = raw_points(CONFIG["seed"], 192)
    standardised = ScaledToy.build_datasets  # what training fed the model, computed before it is forbidden

    def forbidden(self):
        raise AssertionError("load_trained built a data set")

    monkeypatch.setattr(ScaledToy, "build_datasets", forbidden)
    loaded = load_trained("toy", "scaled", checkpoint="checkpoint_epoch_2.pt")
    predicted = loaded.predict(x[128:])  # raw inputs of the test split
    monkeypatch.setattr(ScaledToy, "build_datasets", standardised)
    test_inputs = loaded.task.build_datasets().test.tensors[0]
    with torch.no_grad():
        assert torch.equal(predicted, loaded.model(test_inputs))
    assert loaded.epoch == 2


def test_evaluating_best_gives_exactly_the_test_values_training_logged(run):
    csv = (run / "logs" / "metrics.csv").read_bytes()
    logged = pd.read_csv(run / "logs" / "metrics.csv").dropna(subset=["test/mae"]).iloc[-1]
    assert logged["test/samples"] == 64, "what the task logs itself went to the CSV in training"
    config = read_run_config(Run.require("toy", "scaled"))
    result = evaluate_checkpoint(Run.require("toy", "scaled"), config, "best", "test", torch.device("cpu"))
    assert (run / "logs" / "metrics.csv").read_bytes() == csv, "and nowhere while evaluating"
    assert result.record["metrics"] == {"test/loss": logged["test/loss"], "test/mae": logged["test/mae"]}
    assert result.drawings == [] and not (run / "visualizations" / "eval").exists(), "the task draws nothing"


def test_a_checkpoint_written_before_task_states_still_loads(run, tmp_path):
    old = load_checkpoint(run / "checkpoints" / "best.pt")
    del old["task_state"]
    path = save_checkpoint(tmp_path / "old.pt", old)
    loaded = load_trained("toy", "scaled", checkpoint=path)
    assert loaded.path == path and not hasattr(loaded.task, "mean"), "no state to restore"


def test_load_trained_names_a_missing_run_checkpoint_or_device(run):
    with pytest.raises(RunNotFoundError):
        load_trained("toy", "nosuch")
    with pytest.raises(CheckpointError, match=r"'checkpoint_epoch_7.pt' does not exist .*best.pt"):
        load_trained("toy", "scaled", checkpoint="checkpoint_epoch_7.pt")
    with pytest.raises(ConfigValueError, match="device"):
        load_trained("toy", "scaled", device="tpu")


def test_a_task_without_state_or_predict_gets_the_defaults():
    task = Task(TaskContext(parse_run_config(dict(CONFIG)).parsed, 0, torch.device("cpu")))
    model = nn.Linear(4, 1)
    inputs = torch.randn(3, 4)
    assert task.state_dict() == {} and task.load_state_dict({}) is None
    assert torch.equal(task.predict(model, inputs), model(inputs))


def test_a_resume_goes_on_with_the_task_state_of_its_checkpoint(run):
    config = {**CONFIG, "training": {**CONFIG["training"], "epochs": 1}}
    resumed = Path(create_run("toy", "resumed", config))
    assert run_session(Run.require("toy", "resumed"), parse_run_config(config), torch.device("cpu"), resume=False).exit_code == 0
    for path in (resumed / "checkpoints").glob("*.pt"):  # a state build_datasets would not give again
        checkpoint = load_checkpoint(path)
        checkpoint["task_state"]["mean"] = checkpoint["task_state"]["mean"] + 100.0
        save_checkpoint(path, checkpoint)
    marked = load_checkpoint(resumed / "checkpoints" / "last.pt")["task_state"]["mean"]
    longer = {**config, "training": {**config["training"], "epochs": 2}}
    assert run_session(Run.require("toy", "resumed"), parse_run_config(longer), torch.device("cpu"), resume=True).exit_code == 0
    saved = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert saved["epoch"] == 2 and torch.equal(saved["task_state"]["mean"], marked)
