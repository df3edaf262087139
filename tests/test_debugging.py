"""The `debug` and `profile` sections on a toy task whose model turns its hidden activations into
NaN at a known step, between its two layers: the guard names the layer, the step and the cause,
'stop' exits 1 before a checkpoint can hold it and --resume finishes with every step once;
'warn' logs once and goes on; a torch.profiler trace and the task's own section are written."""

import importlib.util
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from conftest import SRC
from test_engine_toy_task import CONFIG, ToyData, ToyRegression
from train_support import read_metrics, tensorboard_steps
from training.run_config import parse_run_config
from training.task import StepOutput, register_task
from utils.checkpointing.io import load_checkpoint
from utils.config_fields import option
from utils.errors import ConfigValueError
from utils.management import create_run
from utils.profiler import PROFILER

POISONED_STEP = 27  # in epoch 2 (20 steps an epoch): last.pt of epoch 1 is at step 20
EPOCHS, STEPS_PER_EPOCH = 3, 20


@dataclass(frozen=True, kw_only=True)
class PoisonConfig:
    SECTION: ClassVar[str] = "model"
    poison_at_step: int | None = option(None, "the training forward whose hidden activations become NaN", ge=0)


class TwoLayers(nn.Module):
    """fc1 -> (NaN at one training forward) -> relu -> fc2: the NaN is made between the layers."""

    def __init__(self, poison_at: int | None) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 1)
        self.poison_at, self.forwards = poison_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(x)  # (B, 8)
        if self.training:
            if self.forwards == self.poison_at:
                hidden = hidden * float("nan")
            self.forwards += 1
        return self.fc2(torch.relu(hidden))  # (B, 1)


@register_task
class PoisonedToy(ToyRegression):
    name = "toy_poisoned"
    config_sections = (ToyData, PoisonConfig)

    def build_model(self) -> nn.Module:
        return TwoLayers(self.section(PoisonConfig).poison_at_step)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        with PROFILER.section("toy_batch"):  # a task's own section, for profile.txt
            return super().train_step(model, batch)


def _train_cli(*args: str) -> int:
    """02_train.py's `main` in this process, where the toy task is registered."""
    spec = importlib.util.spec_from_file_location("train_cli_debugging", SRC / "02_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(["--device", "cpu", *args])


def _config(**debug: Any) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["task"], config["training"]["epochs"] = "toy_poisoned", EPOCHS
    config["model"] = {"poison_at_step": POISONED_STEP}
    config["debug"] = debug
    return config


@pytest.fixture(scope="module")
def stopped_and_resumed(tmp_path_factory):
    """One run: stopped by the guard at the poisoned step, then resumed with the poison removed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(tmp_path_factory.mktemp("experiments")))
        patch.setenv("OMP_NUM_THREADS", "1")
        config = _config(nan_guard="stop", stats_every=5)
        config["logging"]["tensorboard"] = True
        folder = create_run("debug", "stop", config)
        stopped = _train_cli("-e", "debug", "-r", "stop")
        log_after_stop = (folder / "logs" / "log.txt").read_text()
        last_after_stop = load_checkpoint(folder / "checkpoints" / "last.pt")
        resumed = _train_cli("-e", "debug", "-r", "stop", "--resume", "--set", "model.poison_at_step=null")
        yield folder, stopped, log_after_stop, last_after_stop, resumed


def test_nan_guard_stop_exits_1_naming_the_layer_the_step_and_the_code_between_two_layers(stopped_and_resumed):
    _, stopped, log, _, _ = stopped_and_resumed
    assert stopped == 1
    line = next(line for line in log.splitlines() if "NonFiniteError" in line)
    assert "layer 'fc2'" in line and f"at step {POISONED_STEP} in the forward pass" in line
    assert "the code between 'fc1' and 'fc2' produced them" in line


def test_nan_guard_stop_saves_no_checkpoint_of_the_poisoned_step(stopped_and_resumed):
    _, _, _, last, _ = stopped_and_resumed
    assert last["global_step"] == STEPS_PER_EPOCH, "last.pt is the end of epoch 1, before the NaN"
    assert all(torch.isfinite(value).all() for value in last["model"].values())


def test_resume_after_fixing_the_config_finishes_with_every_step_once(stopped_and_resumed):
    folder, _, _, _, resumed = stopped_and_resumed
    assert resumed == 0
    metrics = read_metrics(folder)
    steps = EPOCHS * STEPS_PER_EPOCH
    assert list(metrics["step"]) == list(range(steps))
    assert metrics["train/loss"].notna().all()
    assert tensorboard_steps(folder, "train/loss") == list(range(steps))


def test_stats_every_logs_at_multiples_of_n_across_the_stop_and_the_resume(stopped_and_resumed):
    folder, *_ = stopped_and_resumed
    metrics = read_metrics(folder)
    for column in ("debug/fc1/output_mean", "debug/fc2/grad_norm", "debug/fc1/weight_norm",
                   "debug/fc2/weight_grad_max"):
        assert list(metrics.loc[metrics[column].notna(), "step"]) == list(range(0, 60, 5)), column
    assert tensorboard_steps(folder, "debug/fc1/output_mean") == list(range(0, 60, 5))


def test_nan_guard_warn_logs_once_and_goes_on_and_torch_steps_writes_a_trace(experiments_root):
    config = _config(nan_guard="warn")
    config["model"]["poison_at_step"] = 5
    config["training"]["epochs"] = 1
    config["profile"] = {"torch_steps": [2, 4]}
    folder = create_run("debug", "warn", config)
    assert _train_cli("-e", "debug", "-r", "warn") == 0
    log = (folder / "logs" / "log.txt").read_text()
    assert log.count("nan_guard:") == 1 and "at step 5 in the forward pass" in log
    traces = list((folder / "logs" / "torch_profiler").glob("*.pt.trace.json"))
    assert len(traces) == 1
    events = json.loads(traces[0].read_text())["traceEvents"]
    assert sum(1 for event in events if event.get("name", "").startswith("ProfilerStep#")) == 2, "steps 2 and 3"
    assert any(event.get("name", "").startswith("aten::addmm") for event in events)
    assert "torch.profiler trace of steps 2..3" in log and "Self CPU" in log, "the top operators table"
    assert "toy_batch" in (folder / "logs" / "profile.txt").read_text()


def test_a_layer_pattern_that_matches_no_layer_exits_2(experiments_root, capsys):
    create_run("debug", "typo", _config(stats_every=1, layers=["fc9"]))
    assert _train_cli("-e", "debug", "-r", "typo") == 2
    assert "debug.layers=['fc9']" in capsys.readouterr().err


@pytest.mark.parametrize(("section", "value", "message"), [
    ("profile", {"torch_steps": [3, 3]}, "profile.torch_steps=[3, 3] is out of range"),
    ("profile", {"torch_steps": [0, 2]}, "profile.torch_steps=[0, 2] is out of range"),
    ("debug", {"nan_guard": "halt"}, "debug.nan_guard='halt'"),
    ("debug", {"stats_every": 0}, "debug.stats_every=0 is out of range"),
])
def test_bad_debug_and_profile_values_name_the_key(section, value, message):
    config = _config()
    config[section] = value
    with pytest.raises(ConfigValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_run_config(config)
