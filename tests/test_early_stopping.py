"""Early stopping: the rule, its config, and a resume that stops at the same epoch."""

import json

import pytest
import torch

from test_engine_toy_task import CONFIG, _train
from train_support import read_metrics
from training.early_stopping import EarlyStopping, EarlyStoppingConfig
from training.run_config import parse_run_config
from utils.checkpointing.io import load_checkpoint
from utils.errors import ConfigValueError
from utils.management import create_run


def test_stops_after_patience_evaluations_without_an_improvement_beyond_min_delta():
    stopper = EarlyStopping(EarlyStoppingConfig(patience=2, mode="min", min_delta=0.1))
    assert stopper.update(1.0) is None  # the first value is the best so far
    assert stopper.update(0.95) is None  # better, but not by more than min_delta: stale 1
    assert stopper.update(0.8) is None  # an improvement resets the count
    assert stopper.update(0.79) is None
    reason = stopper.update(float("nan"))
    assert reason is not None and "val/loss" in reason and "patience 2" in reason


def test_disabled_by_default_and_its_state_round_trips():
    assert EarlyStopping(EarlyStoppingConfig()).update(1.0) is None
    stopper = EarlyStopping(EarlyStoppingConfig(patience=3, mode="max"))
    stopper.update(0.5), stopper.update(0.4)
    again = EarlyStopping(EarlyStoppingConfig(patience=3, mode="max"))
    again.load_state_dict(stopper.state_dict())
    assert again.state_dict() == {"best": 0.5, "stale": 1}


def test_the_watched_metric_must_be_one_the_task_produces():
    config = json.loads(json.dumps(CONFIG))
    config["early_stopping"] = {"patience": 2, "metric": "val/f1"}
    with pytest.raises(ConfigValueError, match=r"early_stopping.metric='val/f1'.*choose one of val/loss, val/mae"):
        parse_run_config(config)



@pytest.mark.slow
def test_a_resumed_run_stops_at_the_same_epoch_as_an_uninterrupted_one():
    config = json.loads(json.dumps(CONFIG))
    config["scheduler"] = {"name": "constant", "warmup_epochs": 0}  # the schedule must not depend on epochs
    # only epoch 1 counts; the toy task does not declare mae's direction, so the mode is given
    config["early_stopping"] = {"patience": 2, "metric": "val/mae", "mode": "min", "min_delta": 10.0}
    reference = create_run("early", "reference", json.loads(json.dumps(config)))
    resumed = create_run("early", "resumed", json.loads(json.dumps(config)))

    done = _train("early", "reference")
    assert done.returncode == 0, done.stderr
    assert "early stopping: val/mae has not improved" in done.stderr
    assert "early stopping" in (reference / "logs" / "log.txt").read_text()
    assert load_checkpoint(reference / "checkpoints" / "last.pt")["epoch"] == 3

    assert _train("early", "resumed", "--set", "training.epochs=2").returncode == 0  # one evaluation stale
    again = _train("early", "resumed", "--resume")
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["epoch"] == 3, "the patience count came back"
    expected = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(resumed / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert read_metrics(resumed)["step"].tolist() == list(range(3 * 20))
    finished = _train("early", "resumed", "--resume")
    assert finished.returncode == 0 and "finished" in finished.stdout and "nothing to do" in finished.stdout
