"""Epoch callbacks: `02_train.main(argv, callbacks=...)` in this process, on the toy task of
test_engine_toy_task, sees each evaluated epoch and stops a run as early stopping does."""

import importlib.util
import json

import pytest

from conftest import SRC
from test_engine_toy_task import CONFIG  # registers the toy task
from train_support import read_metrics
from utils.checkpointing.io import load_checkpoint
from utils.management import create_run

STEPS_PER_EPOCH = 20  # 160 training points / batch 8
REASON = "pruned by the test's callback at epoch 2"


def _train_cli():
    spec = importlib.util.spec_from_file_location("train_cli_callbacks", SRC / "02_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(epochs: int, eval_every: int = 1) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["deterministic"] = False  # not needed here; it would switch this pytest process's kernels
    config["training"].update(epochs=epochs, eval_every=eval_every)
    return config


def test_a_reason_given_after_the_last_epoch_stops_nothing():
    """A run that trained every epoch finishes as such: a sweep trial that Optuna would prune at
    its end completes, and the study keeps its result."""
    run_dir = create_run("cb", "last", _config(epochs=2))
    seen: list[int] = []

    def prune_at_two(epoch: int, history: dict[str, float]) -> str | None:
        seen.append(epoch)
        return REASON if epoch == 2 else None

    assert _train_cli().main(["-e", "cb", "-r", "last", "--device", "cpu"], callbacks=[prune_at_two]) == 0
    assert seen == [1, 2], "the callback still sees the last epoch"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["extra"]["stopped_early"] is None
    assert json.loads((run_dir / "logs" / "summary.json").read_text())["stopped_early"] is None


@pytest.mark.slow
def test_a_callback_stops_the_run_at_its_epoch_and_the_run_counts_as_finished(capsys):
    run_dir = create_run("cb", "stopped", _config(epochs=4))
    seen: list[int] = []

    def prune_at_two(epoch: int, history: dict[str, float]) -> str | None:
        seen.append(epoch)
        return REASON if epoch == 2 else None

    cli = _train_cli()
    assert cli.main(["-e", "cb", "-r", "stopped", "--device", "cpu"], callbacks=[prune_at_two]) == 0
    assert seen == [1, 2]
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (last["epoch"], last["global_step"], last["extra"]["stopped_early"]) == (2, 2 * STEPS_PER_EPOCH, REASON)
    assert json.loads((run_dir / "logs" / "summary.json").read_text())["stopped_early"] == REASON
    assert REASON in (run_dir / "logs" / "log.txt").read_text()
    assert read_metrics(run_dir)["step"].drop_duplicates().tolist() == list(range(2 * STEPS_PER_EPOCH))

    capsys.readouterr()
    csv_before = (run_dir / "logs" / "metrics.csv").read_text()
    assert cli.main(["-e", "cb", "-r", "stopped", "--device", "cpu", "--resume"], callbacks=[prune_at_two]) == 0
    assert "is finished" in capsys.readouterr().out
    assert seen == [1, 2], "a finished run trains and evaluates nothing"
    assert (run_dir / "logs" / "metrics.csv").read_text() == csv_before
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 2 * STEPS_PER_EPOCH


@pytest.mark.slow
def test_a_callback_receives_the_validation_metrics_of_each_evaluated_epoch():
    run_dir = create_run("cb", "watched", _config(epochs=4, eval_every=2))
    received: dict[int, dict[str, float]] = {}

    def record(epoch: int, history: dict[str, float]) -> None:
        received[epoch] = history

    assert _train_cli().main(["-e", "cb", "-r", "watched", "--device", "cpu"], callbacks=[record]) == 0
    assert sorted(received) == [2, 4], "asked after evaluated epochs only"
    metrics = read_metrics(run_dir)
    for epoch, history in received.items():
        logged = metrics[metrics["step"] == epoch * STEPS_PER_EPOCH - 1]
        assert {"val/loss", "val/mae", "train/epoch_loss"} <= set(history) and "train/loss" not in history
        assert history["train/epoch_loss"] == pytest.approx(logged["train/epoch_loss"].dropna().item(), rel=1e-6)
        assert history["val/mae"] == pytest.approx(logged["val/mae"].dropna().item(), rel=1e-6)
        assert history["val/loss"] == pytest.approx(logged["val/loss"].dropna().item(), rel=1e-6)
    assert received[2]["val/mae"] != received[4]["val/mae"], "each call sees its own epoch's metrics"
