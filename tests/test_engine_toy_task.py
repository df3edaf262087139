"""The seam holds for a task the engine has never seen: a linear regression defined in this file
trains through the real `02_train.py`, stops on a real SIGTERM and resumes exactly."""

import ast
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

import prewarmed
from conftest import REPO_ROOT, SRC, subprocess_env
from train_support import read_metrics, signal_once_ready
from training.task import Datasets, StepOutput, Task, register_task
from utils.checkpointing.io import load_checkpoint
from utils.config_fields import option
from utils.logging import LOGGER
from utils.management import create_run

TESTS = Path(__file__).resolve().parent


@dataclass(frozen=True, kw_only=True)
class ToyData:
    SECTION: ClassVar[str] = "data"
    samples: int = option(240, "points drawn from y = x.w + b + noise", gt=0)


@register_task
class ToyRegression(Task):
    """Written as tasks were before metric directions and before `summarize` and `draw` got the
    split and the step: such a task still trains (`mae`'s direction is unknown)."""

    name = "toy_regression"
    config_sections = (ToyData,)
    metrics = ("loss", "mae")

    def build_datasets(self) -> Datasets:
        generator = torch.Generator().manual_seed(self.context.seed)
        x = torch.randn(self.section(ToyData).samples, 4, generator=generator)  # (N, 4)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(len(x), 1, generator=generator)
        cut = len(x) * 2 // 3
        return Datasets(TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:]), TensorDataset(x[cut:], y[cut:]))

    def build_model(self) -> nn.Module:
        return nn.Linear(4, 1)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        return StepOutput(nn.functional.mse_loss(model(x), y), len(y))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        error = model(x) - y
        return {"sse": (error**2).sum(), "sae": error.abs().sum(), "count": torch.tensor(len(y))}

    def summarize(self, sums: dict[str, Tensor]) -> dict[str, float]:
        count = sums["count"].item()
        return {"loss": sums["sse"].item() / count, "mae": sums["sae"].item() / count}


@register_task
class SelfStoppingToy(ToyRegression):
    """The toy regression sending itself a real SIGTERM in its `TOY_SIGTERM_AT`-th training batch:
    the stop lands at a known batch part-way through an epoch, however fast the machine is."""

    name = "toy_self_stopping"
    batches = 0

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        self.batches += 1
        if self.batches == int(os.environ.get("TOY_SIGTERM_AT", "0")):
            os.kill(os.getpid(), signal.SIGTERM)
        return super().train_step(model, batch)


@register_task
class ToyWithOwnLogs(ToyRegression):
    """Logs a value of its own in `summarize` and in `draw`; tests on the training data, so the
    test split's values differ from validation's."""

    name = "toy_own_logs"
    metrics = {"loss": "min", "mae": "min"}

    def build_datasets(self) -> Datasets:
        datasets = super().build_datasets()
        return Datasets(datasets.train, datasets.val, datasets.train)

    def summarize(self, sums: dict[str, Tensor], split: str, step: int) -> dict[str, float]:
        metrics = super().summarize(sums)
        LOGGER.log({f"{split}/own_mae": metrics["mae"]}, step)
        return metrics

    def draw(self, model: nn.Module, batch: Any, sums: dict[str, Tensor], split: str, step: int) -> dict[str, Any]:
        LOGGER.log({f"{split}/drawn_at": step}, step)
        return {}


# tiny epochs (~25 ms each): the 79 after epoch 1 train for ~2 s, so a signal sent once epoch 1 is
# saved surely lands part-way (with 40, ~0.9 s: the run could end first)
EPOCHS = 80
CONFIG = {
    "task": "toy_regression", "seed": 3, "deterministic": True,
    "data": {"batch_size": 8, "samples": 240},
    "optimizer": {"lr": 0.01},
    "training": {"epochs": EPOCHS, "checkpoint_every": 1, "best_metric": "val/mae", "best_mode": "min",
                 "draw_every": None},
    "logging": {"tensorboard": False, "wandb": False},
}
STEPS = EPOCHS * 20  # 160 training points / batch 8

def _command(exp: str, run: str, *args: str) -> list[str]:
    """02_train.py as a user runs it, after this module has registered its task."""
    return [sys.executable, str(TESTS / "with_tasks.py"), "test_engine_toy_task", str(SRC / "02_train.py"),
            "-e", exp, "-r", run, "--device", "cpu", *args]


def _env(**extra: str) -> dict[str, str]:
    env = subprocess_env(**extra)
    env["PYTHONPATH"] = f"{TESTS}:{env['PYTHONPATH']}"
    return env


def _train(exp: str, run: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return prewarmed.run(_command(exp, run, *args), timeout=240, env=_env(**env), cwd=REPO_ROOT)


def check_exact_resume(exp: str, config: dict) -> tuple[Path, Path]:
    """Train `config` uninterrupted and with a SIGTERM after epoch 1 then `--resume`; check both
    end with the same weights and every step once in the CSV. Returns (reference, interrupted)."""
    reference = create_run(exp, "reference", json.loads(json.dumps(config)))
    interrupted = create_run(exp, "interrupted", json.loads(json.dumps(config)))
    done = _train(exp, "reference")
    assert done.returncode == 0, done.stderr
    assert "test/mae" in done.stdout

    ready = (interrupted / "checkpoints" / "last.pt").exists  # written at each epoch's end, never deleted
    assert signal_once_ready(_command(exp, "interrupted"), ready, env=_env()) == 143
    stopped_at = load_checkpoint(interrupted / "checkpoints" / "last.pt")["global_step"]
    assert 20 <= stopped_at < STEPS

    resumed = _train(exp, "interrupted", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(interrupted / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert list(read_metrics(interrupted)["step"]) == list(range(STEPS))
    return reference, interrupted


@pytest.mark.slow
def test_a_task_defined_in_a_test_file_trains_stops_and_resumes_exactly():
    reference, interrupted = check_exact_resume("toy", CONFIG)
    metrics = read_metrics(interrupted)
    assert metrics["train/loss"].tolist() == read_metrics(reference)["train/loss"].tolist()
    assert metrics["val/mae"].dropna().iloc[-1] < 0.2, "the toy task learns"


@pytest.mark.slow
def test_epoch_means_after_a_resume_part_way_through_an_epoch_equal_an_uninterrupted_run():
    config = json.loads(json.dumps(CONFIG))
    config["task"] = "toy_self_stopping"
    config["training"]["epochs"] = 3
    reference = create_run("means", "reference", json.loads(json.dumps(config)))
    interrupted = create_run("means", "interrupted", config)
    assert _train("means", "reference").returncode == 0

    stopped = _train("means", "interrupted", TOY_SIGTERM_AT="27")  # in batch 7 of epoch 2's 20
    assert stopped.returncode == 143, stopped.stderr
    assert load_checkpoint(interrupted / "checkpoints" / "last.pt")["extra"]["batches_done"] == 7
    resumed = _train("means", "interrupted", "--resume")
    assert resumed.returncode == 0, resumed.stderr

    expected, actual = read_metrics(reference), read_metrics(interrupted)
    columns = ["step", *(name for name in expected.columns if name.startswith("train/epoch_"))]
    assert len(columns) > 1 and expected["train/epoch_loss"].notna().sum() == 3
    assert actual[columns].dropna().values.tolist() == expected[columns].dropna().values.tolist()  # exact


@pytest.mark.slow
def test_what_a_task_logs_in_summarize_and_draw_goes_to_the_split_and_step_it_is_told():
    config = json.loads(json.dumps(CONFIG))
    config["task"] = "toy_own_logs"
    config["training"].update(epochs=2, draw_every=1)
    run = create_run("own", "logs", config)
    done = _train("own", "logs")
    assert done.returncode == 0, done.stderr

    metrics = read_metrics(run).set_index("step")
    for split, steps in (("val", [19, 39]), ("test", [39])):
        own = metrics[f"{split}/own_mae"].dropna()
        assert own.index.tolist() == steps
        assert own.tolist() == metrics[f"{split}/mae"].dropna().tolist()  # its own split's value, not the other's
        assert metrics[f"{split}/drawn_at"].dropna().to_dict() == {step: step for step in steps}
    assert metrics.loc[39, "val/own_mae"] != metrics.loc[39, "test/own_mae"]


ENGINE = [SRC / "02_train.py", *sorted((SRC / "training").glob("*.py")), *sorted((SRC / "utils").rglob("*.py"))]


@pytest.mark.parametrize("module", ENGINE, ids=lambda p: str(p.relative_to(SRC)))
def test_the_engine_imports_no_task(module: Path):
    tree = ast.parse(module.read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name == "tasks" or name.startswith("tasks.")]
