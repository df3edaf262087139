"""02_train.py end to end on the real digits data, and its bad-input table."""

import json

import pytest

from conftest import run_script
from train_support import assert_perf_at_every_epoch, make_run, read_metrics, tensorboard_steps, train
from utils.checkpointing.io import load_checkpoint

pytestmark = pytest.mark.slow


def test_training_writes_every_output_of_a_run():
    run_dir = make_run("exp", "full", "training.draw_every=1")
    result = train("exp", "full")
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(run_dir)
    steps_per_epoch = 20  # 1,257 training images / batch 64, last partial batch kept
    assert list(metrics["step"]) == list(range(3 * steps_per_epoch))
    assert metrics["train/loss"].notna().all() and metrics["lr"].notna().all()
    assert metrics["val/accuracy"].notna().sum() == 3
    assert metrics["test/accuracy"].dropna().iloc[0] > 0.9
    lrs = metrics["lr"].tolist()
    assert lrs[0] < lrs[steps_per_epoch] and lrs[-1] < lrs[steps_per_epoch]  # warm-up then decay
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert {"last.pt", "best.pt", "checkpoint_epoch_2.pt", "checkpoint_epoch_3.pt"} <= checkpoints
    assert "checkpoint_epoch_1.pt" not in checkpoints  # keep_checkpoints=2
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 3 * steps_per_epoch
    assert any(run_dir.joinpath("plots").glob("*.png"))
    assert any("confusion" in p.name for p in run_dir.joinpath("visualizations").rglob("*.png"))
    assert tensorboard_steps(run_dir, "train/loss") == list(range(3 * steps_per_epoch))
    assert (run_dir / "logs" / "architecture.txt").is_file()
    summary = json.loads((run_dir / "logs" / "summary.json").read_text())
    assert summary["train/epoch_loss"] == pytest.approx(metrics["train/epoch_loss"].dropna().iloc[-1], rel=1e-6)
    assert "test/accuracy" in result.stdout and str(run_dir) in result.stdout
    assert "tensorboard --logdir" in result.stdout
    _assert_one_line_per_epoch_and_the_ending(result.stderr, (run_dir / "logs" / "log.txt").read_text())
    assert not (run_dir / "plots" / "epoch.png").exists(), "a counter is not a curve"
    assert (run_dir / "plots" / "accuracy.png").is_file()
    assert_perf_at_every_epoch(metrics, steps_per_epoch, samples_per_epoch=1257)


def _assert_one_line_per_epoch_and_the_ending(console: str, log: str) -> None:
    """Also when stderr is no terminal: `epoch N/M` with the losses, lr and ETA, in log.txt too."""
    for epoch in (1, 2, 3):
        lines = [line for line in console.splitlines() if f"epoch {epoch}/3 " in line]
        assert len(lines) == 1, console
        for word in ("train/epoch_loss", "val/loss", "val/accuracy", "lr", "samples/s, data ", "eta"):
            assert word in lines[0]
        assert " train/loss " not in lines[0], "train/loss is the per-step loss, not the epoch's mean"
        assert lines[0].split(" INFO ", 1)[1] in log
    assert "finished at epoch 3, step 60" in log and "test/accuracy" in log


def test_set_overrides_apply_to_the_session_only():
    run_dir = make_run("exp", "short")
    before = (run_dir / "config.json").read_bytes()
    result = train("exp", "short", "--set", "training.epochs=1")
    assert result.returncode == 0, result.stderr
    assert read_metrics(run_dir)["val/accuracy"].notna().sum() == 1
    assert (run_dir / "config.json").read_bytes() == before
    assert not any((run_dir / "visualizations").iterdir()), "training.draw_every=null draws nothing"
    assert not any((run_dir / "plots").iterdir()), "not even the training curves"


def test_drawings_are_logged_every_draw_every_epochs_after_the_last_and_at_the_test():
    run_dir = make_run("exp", "drawn", "training.draw_every=2", "model.channels=[4,8]", "model.hidden=16")
    result = train("exp", "drawn")
    assert result.returncode == 0, result.stderr
    drawn = sorted(p.name for p in (run_dir / "visualizations").glob("*confusion_matrix*.png"))
    last_steps = [19, 39, 59]  # the last step of epochs 1, 2, 3 (20 steps each)
    assert drawn == [f"test_confusion_matrix_step{last_steps[2]:08d}.png"] + [
        f"val_confusion_matrix_step{last_steps[epoch - 1]:08d}.png" for epoch in (2, 3)
    ]


def _expect_usage_error(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_a_run_that_does_not_exist_names_the_initialize_command():
    _expect_usage_error(run_script("02_train.py", "-e", "exp", "-r", "missing"), "does not exist", "01_initialize.py")


def test_a_config_without_a_task_names_the_key_and_the_known_tasks(experiments_root):
    run_dir = make_run("exp", "broken")
    config = json.loads((run_dir / "config.json").read_text())
    del config["task"]
    (run_dir / "config.json").write_text(json.dumps(config))
    _expect_usage_error(run_script("02_train.py", "-e", "exp", "-r", "broken"), "'task' is missing", "digits")


def test_a_config_value_of_the_wrong_type_names_the_key():
    make_run("exp", "typed", 'data.batch_size="64"')
    _expect_usage_error(run_script("02_train.py", "-e", "exp", "-r", "typed"), "data.batch_size", "int")


def test_an_unknown_device_lists_the_choices():
    make_run("exp", "dev")
    _expect_usage_error(run_script("02_train.py", "-e", "exp", "-r", "dev", "--device", "tpu"), "tpu", "cpu")


def test_nothing_is_written_for_bad_input(experiments_root):
    run_dir = make_run("exp", "untouched", 'data.batch_size="64"')
    before = sorted(p.relative_to(experiments_root) for p in experiments_root.rglob("*"))
    run_script("02_train.py", "-e", "exp", "-r", "untouched")
    assert sorted(p.relative_to(experiments_root) for p in experiments_root.rglob("*")) == before
    assert (run_dir / "config.json").is_file()
