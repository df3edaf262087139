"""The trainer's state: `Trainer.state_dict()` and `load_state_dict()` round-trip through a
checkpoint file, and an older checkpoint without the newer keys still loads."""

import json
from pathlib import Path

import torch

from test_engine_toy_task import CONFIG
from training.run_config import parse_run_config
from training.session import _build_trainer
from training.signals import GracefulStop
from training.trainer import Trainer, TrainState
from utils.checkpointing.io import build_checkpoint, load_checkpoint, save_checkpoint
from utils.checkpointing.manager import CheckpointManager


def _trainer(folder: Path, **early_stopping: object) -> Trainer:
    config = json.loads(json.dumps(CONFIG))
    config["early_stopping"] = {"patience": 3, "metric": "val/mae", "mode": "min", **early_stopping}
    return _build_trainer(parse_run_config(config), torch.device("cpu"), CheckpointManager(folder), GracefulStop(), ())


def test_the_trainer_state_round_trips_through_a_checkpoint_file(tmp_path: Path) -> None:
    saved = _trainer(tmp_path / "a")
    saved.state = TrainState(
        epoch=4, batches_done=7, global_step=87, stopped_early="a callback asked",
        epoch_totals={"sums": {"loss": torch.tensor(3.5)}, "count": 56},
    )
    saved.early_stopping.update(0.5), saved.early_stopping.update(0.7)
    checkpoint = build_checkpoint(model=saved.model, **saved.state_dict())
    loaded = load_checkpoint(save_checkpoint(tmp_path / "state.pt", checkpoint))

    resumed = _trainer(tmp_path / "b")
    resumed.load_state_dict(loaded)
    state = resumed.state
    assert (state.epoch, state.batches_done, state.global_step, state.stopped_early) == (4, 7, 87, "a callback asked")
    assert state.epoch_totals["count"] == 56 and torch.equal(state.epoch_totals["sums"]["loss"], torch.tensor(3.5))
    assert resumed.early_stopping.state_dict() == {"best": 0.5, "stale": 1}


def test_a_checkpoint_from_before_epoch_totals_and_early_stopping_loads_with_empty_defaults(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    trainer.load_state_dict({"epoch": 2, "global_step": 40, "extra": {"batches_done": 0}})
    assert trainer.state == TrainState(epoch=2, global_step=40)
    assert trainer.early_stopping.state_dict() == {"best": None, "stale": 0}
