"""`training.init_from` for a task the engine has never seen (a regression with a head, defined
here), trained in this process: from a checkpoint path with a new head, from a .safetensors
file, and a session stopped by a real SIGTERM recorded with its exit status."""

import json
import os
import signal
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from test_engine_toy_task import CONFIG, ToyData, ToyRegression
from training.init_from import InitConfig, check_init_from, init_model
from training.run_config import parse_run_config
from training.session import run_session
from training.task import StepOutput, TaskContext, register_task
from utils.checkpointing.io import load_checkpoint
from utils.config_fields import option
from utils.errors import ConfigValueError
from utils.fileio import file_sha256
from utils.management import create_run
from utils.runs.provenance import SESSIONS_FILE, SessionRecord
from utils.runs.run import Run

HEAD = ("2.weight", "2.bias", "4.weight")  # what a new width changes; 4.bias (1,) still fits


@dataclass(frozen=True, kw_only=True)
class ToyHead:
    SECTION: ClassVar[str] = "model"
    width: int = option(8, "the head's hidden width", gt=0)


@register_task
class ToyWithHead(ToyRegression):
    """The toy regression as a body (Linear 4 -> 8) and a head (8 -> width -> 1); it sends itself
    a real SIGTERM in its `stop_at`-th training batch when that is set."""

    name = "toy_lineage"
    config_sections = (ToyData, ToyHead)
    metrics = {"loss": "min", "mae": "min"}
    stop_at = 0
    batches = 0

    def build_model(self) -> nn.Module:
        width = self.section(ToyHead).width
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 1))

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        ToyWithHead.batches += 1
        if ToyWithHead.batches == ToyWithHead.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().train_step(model, batch)


def _config(**training: Any) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["task"] = "toy_lineage"
    config["training"].update(epochs=2, **training)
    return config


def _session(name: str, config: dict) -> tuple[int, Run]:
    create_run("toy", name, config)
    run = Run.require("toy", name)
    return run_session(run, parse_run_config(config), torch.device("cpu"), resume=False).exit_code, run


def _model(config: dict) -> nn.Module:
    parsed = parse_run_config(config)
    return parsed.task(TaskContext(parsed.parsed, 0, torch.device("cpu"))).build_model()


@pytest.fixture
def source() -> Run:
    code, run = _session("source", _config())
    assert code == 0
    return run


def test_a_new_head_from_a_checkpoint_path_and_a_sigterm_stop_are_in_the_session_record(source, monkeypatch):
    last = source.last_checkpoint
    config = _config(init_from=str(last), init_strict=False)
    config["model"] = {"width": 3}
    monkeypatch.setattr(ToyWithHead, "batches", 0)
    monkeypatch.setattr(ToyWithHead, "stop_at", 5)
    code, run = _session("tuned", config)
    assert code == 143
    (record,) = [json.loads(line) for line in (run.logs / SESSIONS_FILE).read_text().splitlines()]
    assert record["exit_status"] == 143
    assert record["init_from"]["sha256"] == file_sha256(last) and record["init_from"]["loaded"] == 3
    assert [entry.split()[0] for entry in record["init_from"]["not_loaded"]] == list(HEAD)
    (line,) = [line for line in run.text_log.read_text().splitlines() if "not loaded (init_strict=false)" in line]
    assert all(key in line for key in HEAD)
    body = load_checkpoint(last)["model"]["0.weight"]
    assert not torch.equal(load_checkpoint(run.last_checkpoint)["model"]["0.weight"], body), "it trained on"


def test_weights_from_a_safetensors_file_load_into_the_model(tmp_path):
    trained = _model(_config())
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.uniform_(-1, 1)
    path = tmp_path / "weights.safetensors"
    save_file(trained.state_dict(), str(path))
    config = _config(init_from=str(path))
    model = _model(config)
    record = SessionRecord(Run.resolve("toy", "safe"), "train", "s", None)
    notes = init_model(model, parse_run_config(config)[InitConfig], resumed=False, record=record)
    assert all(torch.equal(value, trained.state_dict()[key]) for key, value in model.state_dict().items())
    assert record.fields["init_from"]["sha256"] == file_sha256(path) and "loaded 6 of the model's 6" in notes[0]

    changed = _config(init_from=str(path))
    changed["model"] = {"width": 3}
    with pytest.raises(ConfigValueError, match=r"3 keys of the wrong shape \(2\.weight: checkpoint \(8, 8\), model \(3, 8\)"):
        check_init_from(parse_run_config(changed), "config")
