"""Gradient accumulation: micro-batches add up to one optimizer step, logged steps count
optimizer steps, and a run stopped by SIGTERM resumes exactly."""

import json

import pytest
import torch

from test_engine_toy_task import CONFIG, _command, _env, _train
from train_support import read_metrics, signal_once_ready
from utils.checkpointing.io import load_checkpoint
from utils.management import create_run

pytestmark = pytest.mark.slow


def _config(batch_size: int, accumulate: int, epochs: int) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["data"]["batch_size"] = batch_size
    config["training"].update(accumulate_steps=accumulate, epochs=epochs)
    return config


def test_two_micro_batches_of_4_step_like_one_batch_of_8():
    whole = create_run("acc", "whole", _config(batch_size=8, accumulate=1, epochs=3))
    split = create_run("acc", "split", _config(batch_size=4, accumulate=2, epochs=3))
    for run in ("whole", "split"):
        done = _train("acc", run)
        assert done.returncode == 0, done.stderr
    assert read_metrics(split)["step"].tolist() == list(range(3 * 20)), "one logged step per optimizer step"
    expected = load_checkpoint(whole / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(split / "checkpoints" / "last.pt")["model"]
    for name in expected:
        assert torch.allclose(expected[name], actual[name], atol=1e-5), name
    losses = read_metrics(whole)["train/loss"], read_metrics(split)["train/loss"]
    assert torch.allclose(torch.tensor(losses[0].values), torch.tensor(losses[1].values), atol=1e-5)


def test_a_short_last_group_steps_like_its_micro_batches_concatenated_into_one_batch():
    # 40 training points: micro-batches of 4 in groups of 3 are 12, 12, 12 and a short group of 4,
    # the same samples (the sampler's order does not depend on the batch size) as batches of 12
    # (the last one 4); SGD without clipping, so a mis-scaled gradient changes the weights
    configs = {
        "whole": _config(batch_size=12, accumulate=1, epochs=2), "split": _config(batch_size=4, accumulate=3, epochs=2),
    }
    runs = {}
    for name, config in configs.items():
        config["data"]["samples"] = 60
        config["optimizer"] = {"name": "sgd", "lr": 0.01}
        config["training"]["grad_clip"] = None
        runs[name] = create_run("uneven", name, config)
        done = _train("uneven", name)
        assert done.returncode == 0, done.stderr
    whole, split = runs["whole"], runs["split"]
    expected = load_checkpoint(whole / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(split / "checkpoints" / "last.pt")["model"]
    for name in expected:
        assert torch.allclose(expected[name], actual[name], atol=1e-6), name
    # the short group's logged loss is its mean loss (steps 3 and 7), as are the full groups'
    losses = read_metrics(whole)["train/loss"].tolist(), read_metrics(split)["train/loss"].tolist()
    assert len(losses[1]) == 2 * 4
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)


def test_an_accumulating_run_stopped_by_sigterm_resumes_exactly():
    # 40 micro-batches of 4 per epoch, 3 per step: 13 full groups and one of 1; 80 epochs of ~30 ms,
    # so the signal sent once epoch 1 is saved lands with ~2.4 s of training left (40: ~1.2 s)
    epochs = 80
    steps = epochs * 14
    reference = create_run("acc", "reference", _config(batch_size=4, accumulate=3, epochs=epochs))
    interrupted = create_run("acc", "interrupted", _config(batch_size=4, accumulate=3, epochs=epochs))
    assert _train("acc", "reference").returncode == 0

    ready = (interrupted / "checkpoints" / "last.pt").exists  # written at each epoch's end, never deleted
    assert signal_once_ready(_command("acc", "interrupted"), ready, env=_env()) == 143
    stopped = load_checkpoint(interrupted / "checkpoints" / "last.pt")
    assert 14 <= stopped["global_step"] < steps
    assert stopped["extra"]["batches_done"] % 3 == 0 or stopped["extra"]["batches_done"] == 40, "stops between groups"

    resumed = _train("acc", "interrupted", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected = load_checkpoint(reference / "checkpoints" / "last.pt")["model"]
    actual = load_checkpoint(interrupted / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert read_metrics(interrupted)["step"].tolist() == list(range(steps))
