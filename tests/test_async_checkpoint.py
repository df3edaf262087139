"""Checkpoints written by a background thread: the state of the save's moment, errors raised on the
training thread, snapshots. The training runs with it are in tests/test_train_async_checkpoint.py."""

import threading
from pathlib import Path

import pytest
import torch

from utils.checkpointing.async_writer import AsyncCheckpointWriter, snapshot
from utils.checkpointing.io import build_checkpoint, check_weights_only_loadable, load_checkpoint
from utils.checkpointing.manager import CheckpointManager

BOUND_S = 120  # generous: the machine is shared


class GatedManager(CheckpointManager):
    """A manager whose saves wait for `gate` and whose first `fail_first` saves raise."""

    def __init__(self, directory: Path, fail_first: int = 0) -> None:
        super().__init__(directory)
        self.gate = threading.Event()
        self.gate.set()
        self.fail_first = fail_first

    def save(self, checkpoint, *, epoch_file, metric=None):
        self.gate.wait(timeout=BOUND_S)
        if self.fail_first:
            self.fail_first -= 1
            raise OSError(28, "No space left on device (simulated)")
        return super().save(checkpoint, epoch_file=epoch_file, metric=metric)


def _model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(16, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_a_background_save_writes_the_state_of_the_save_not_of_later_steps(tmp_path):
    model, optimizer = _model_and_optimizer()
    manager = GatedManager(tmp_path)
    manager.gate.clear()  # the write cannot start before the training has moved on
    writer = AsyncCheckpointWriter(manager)
    at_save = {name: value.clone() for name, value in model.state_dict().items()}
    moment_avg = optimizer.state_dict()["state"][0]["exp_avg"].clone()

    writer.save(build_checkpoint(model=model, optimizer=optimizer, epoch=1, global_step=7), epoch_file=True)
    with torch.no_grad():
        for value in model.state_dict().values():
            value.fill_(123)  # parameters and BatchNorm buffers changed in place, as a step would
    optimizer.state[model[0].weight]["exp_avg"].fill_(123)
    manager.gate.set()
    writer.wait()

    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["global_step"] == 7
    for name, value in at_save.items():
        assert torch.equal(saved["model"][name], value), name
    assert torch.equal(saved["optimizer"]["state"][0]["exp_avg"], moment_avg)
    assert (tmp_path / "checkpoint_epoch_1.pt").is_file()


def test_a_failed_background_write_is_raised_by_the_next_save_which_writes_nothing(tmp_path):
    model, optimizer = _model_and_optimizer()
    writer = AsyncCheckpointWriter(GatedManager(tmp_path, fail_first=1))
    writer.save(build_checkpoint(model=model, optimizer=optimizer, epoch=0, global_step=1), epoch_file=False)
    with pytest.raises(OSError, match="No space left") as raised:
        writer.save(build_checkpoint(model=model, optimizer=optimizer, epoch=0, global_step=2), epoch_file=False)
    assert "background checkpoint writer" in " ".join(raised.value.__notes__)
    assert not (tmp_path / "last.pt").exists()  # the second save did not start either
    writer.save(build_checkpoint(model=model, optimizer=optimizer, epoch=0, global_step=3), epoch_file=False)
    writer.wait()
    assert load_checkpoint(tmp_path / "last.pt")["global_step"] == 3


def test_a_failed_background_write_is_raised_by_wait_at_the_end(tmp_path):
    model, optimizer = _model_and_optimizer()
    writer = AsyncCheckpointWriter(GatedManager(tmp_path, fail_first=1))
    writer.save(build_checkpoint(model=model, optimizer=optimizer, epoch=0, global_step=1), epoch_file=False)
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.wait()  # raised once


def test_a_snapshot_keeps_tied_weights_shared_and_stays_loadable_with_weights_only():
    shared = torch.arange(6.0)
    state = {"a": shared, "b": shared.view(2, 3), "c": [1, (2.5, "x")], "size": torch.Size([2, 3])}
    copied = snapshot(state)
    check_weights_only_loadable(copied)
    assert copied["b"].untyped_storage().data_ptr() == copied["a"].untyped_storage().data_ptr()
    assert copied["a"].untyped_storage().data_ptr() != shared.untyped_storage().data_ptr()
    assert torch.equal(copied["b"], shared.view(2, 3)) and copied["c"] == [1, (2.5, "x")]
    assert type(copied["size"]) is torch.Size
