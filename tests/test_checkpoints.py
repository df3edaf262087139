"""Checkpoints: exact round trips, safe loading, corrupt files, the manager's files, DDP, kills."""

import collections
import contextlib
import errno
import io
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import subprocess_env
from torch.nn.parallel import DistributedDataParallel

from utils.checkpointing.io import (
    build_checkpoint,
    load_checkpoint,
    peek_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from utils.checkpointing.manager import CheckpointManager
from utils.checkpointing.rng import capture_rng_state, restore_rng_state
from utils.helper_functions import unwrap_model
from utils.errors import CheckpointError, DiskFullError, RunIOError, TemplateError

INPUTS = torch.linspace(-1, 1, 24).reshape(6, 4)  # (B, features)
TARGETS = torch.tensor([0, 1, 2, 0, 1, 2])  # (B,)


def make_training_objects(seed: int) -> dict:
    """A tiny model with Adam, a step scheduler and a CPU grad scaler that grows every step."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}


def train_steps(objects: dict, steps: int) -> None:
    """Scaled-loss optimizer steps on fixed data, stepping the scheduler each time."""
    for _ in range(steps):
        objects["optimizer"].zero_grad()
        loss = torch.nn.functional.cross_entropy(objects["model"](INPUTS), TARGETS)
        objects["scaler"].scale(loss).backward()
        objects["scaler"].step(objects["optimizer"])
        objects["scaler"].update()
        objects["scheduler"].step()


def draw_random_numbers() -> tuple:
    """One draw from each generator a training loop uses."""
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def scramble_rng() -> None:
    """Move every generator somewhere else, so a restore has something to undo."""
    random.seed(12345)
    np.random.seed(12345)
    torch.manual_seed(12345)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty checkpoints folder (tmp_path itself also holds the fixture's experiments root)."""
    path = tmp_path / "checkpoints"
    path.mkdir()
    return path


def tiny_checkpoint(epoch: int, global_step: int) -> dict:
    """A complete checkpoint of a small model (for the manager tests)."""
    return build_checkpoint(model=torch.nn.Linear(2, 2), epoch=epoch, global_step=global_step)


def test_round_trip_restores_training_state_and_random_draws(folder: Path) -> None:
    original = make_training_objects(seed=0)
    train_steps(original, 3)
    checkpoint = build_checkpoint(**original, epoch=1, global_step=3, best_metric=0.5,
                                  extra={"note": "x"})
    path = save_checkpoint(folder / "ckpt.pt", checkpoint)
    draws_after_capture = draw_random_numbers()
    train_steps(original, 2)

    scramble_rng()
    restored = make_training_objects(seed=1)
    loaded = load_checkpoint(path)
    restore_checkpoint(loaded, **restored)

    assert draw_random_numbers() == draws_after_capture
    assert restored["scaler"].get_scale() == 1024.0 * 2**3
    assert restored["scheduler"].state_dict() == checkpoint["scheduler"]
    assert (loaded["epoch"], loaded["global_step"], loaded["best_metric"]) == (1, 3, 0.5)
    assert loaded["extra"] == {"note": "x"}
    train_steps(restored, 2)  # continuing from the restore must retrace the original run
    for name, tensor in original["model"].state_dict().items():
        torch.testing.assert_close(restored["model"].state_dict()[name], tensor, rtol=0, atol=0)
    assert restored["optimizer"].param_groups[0]["lr"] == original["optimizer"].param_groups[0]["lr"]


def test_rng_state_restores_without_a_file() -> None:
    state = capture_rng_state()
    expected = draw_random_numbers()
    scramble_rng()
    restore_rng_state(state)
    assert draw_random_numbers() == expected


def test_saved_file_loads_with_plain_weights_only_torch_load(folder: Path) -> None:
    objects = make_training_objects(seed=0)
    train_steps(objects, 1)
    path = save_checkpoint(folder / "ckpt.pt", build_checkpoint(**objects, epoch=0, global_step=1))
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw["rng"]["numpy"]["keys"], torch.Tensor)
    assert raw["rng"]["numpy"]["keys"].shape == (624,)
    assert set(raw["model"]) == {"weight", "bias"}


def test_save_rejects_values_weights_only_cannot_load(folder: Path) -> None:
    checkpoint = build_checkpoint(model=torch.nn.Linear(2, 2), epoch=0, global_step=0,
                                  extra={"accuracy": np.float64(0.9)})
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\['accuracy'\] is a numpy.float64"):
        save_checkpoint(folder / "ckpt.pt", checkpoint)
    assert list(folder.iterdir()) == []


def test_failed_save_removes_its_temp_file_and_keeps_the_old_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint(folder / "last.pt", tiny_checkpoint(epoch=1, global_step=1))

    def fail_like_a_full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(DiskFullError, match="no space left on device"):
        patch.setattr(os, "fsync", fail_like_a_full_disk)
        save_checkpoint(path, tiny_checkpoint(epoch=2, global_step=2))
    assert [p.name for p in folder.iterdir()] == ["last.pt"]
    assert load_checkpoint(path)["global_step"] == 1


@pytest.fixture
def small_filesystem(tmpfs_mount) -> Path:
    """A real 1 MB tmpfs (see conftest.tmpfs_mount)."""
    return tmpfs_mount("1m")


def checkpoint_with_weights(floats: int, global_step: int) -> dict:
    """A checkpoint whose model holds `floats` float32 weights (4 bytes each)."""
    return build_checkpoint(model=torch.nn.Linear(floats, 1, bias=False), epoch=1, global_step=global_step)


def test_saving_on_a_full_disk_names_the_file_and_sizes_and_keeps_the_previous_checkpoint(
    small_filesystem: Path,
) -> None:
    manager = CheckpointManager(small_filesystem / "checkpoints")
    manager.save(checkpoint_with_weights(100_000, global_step=1), epoch_file=False)  # last.pt, 400 kB

    with pytest.raises(DiskFullError) as caught:  # torch.save alone says "unexpected pos ..."
        manager.save(checkpoint_with_weights(500_000, global_step=2), epoch_file=False)

    last = manager.directory / "last.pt"
    message = str(caught.value)
    assert message.startswith(f"cannot write {last}: no space left on device (needs about 2.0 MB, ")
    assert re.search(r", 6\d\d\.\d kB free on ", message), message  # 1 MB minus the 415 kB last.pt
    assert "\n" not in message
    assert isinstance(caught.value, RunIOError) and not isinstance(caught.value, TemplateError)
    assert [p.name for p in manager.directory.iterdir()] == ["last.pt"]
    assert load_checkpoint(last)["global_step"] == 1


class FullDiskFile(io.FileIO):
    """A file whose writes fail with ENOSPC once 64 kB are written, like a disk that fills up."""

    def write(self, data: bytes) -> int:
        if self.tell() + len(data) > 65536:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_full_disk_during_torch_save_raises_disk_full_error_not_torchs_runtime_error(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint(folder / "last.pt", tiny_checkpoint(epoch=1, global_step=1))

    with monkeypatch.context() as patch, pytest.raises(DiskFullError) as caught:
        patch.setattr(os, "fdopen", lambda fd, mode: io.BufferedWriter(FullDiskFile(fd, mode)))
        save_checkpoint(path, checkpoint_with_weights(100_000, global_step=2))

    message = str(caught.value)  # the weights (400 kB) and the random states (15 kB)
    expected = rf"cannot write {re.escape(str(path))}: no space left on device \(needs about 41\d\.\d kB, "
    assert re.match(expected, message), message
    assert [p.name for p in folder.iterdir()] == ["last.pt"]
    assert load_checkpoint(path)["global_step"] == 1


def write_truncated(path: Path) -> None:
    save_checkpoint(path, tiny_checkpoint(epoch=1, global_step=1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def write_foreign_dict(path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, path)


@pytest.mark.parametrize(
    ("write", "problem"),
    [
        (write_truncated, "truncated or corrupt"),
        (write_random_bytes, "truncated or corrupt"),
        (write_foreign_dict, "not a checkpoint of this template"),
        (lambda path: None, "does not exist"),
    ],
    ids=["truncated", "random-bytes", "foreign-dict", "missing"],
)
def test_unusable_file_raises_checkpoint_error_naming_file(folder: Path, write, problem: str) -> None:
    path = folder / "last.pt"
    write(path)
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def write_unsafe_pickle(path: Path) -> None:
    """A checkpoint holding a pickled collections.deque (torch.save bypasses save_checkpoint's check)."""
    checkpoint = tiny_checkpoint(epoch=1, global_step=1)
    checkpoint["extra"] = {"recent": collections.deque([1, 2])}
    torch.save(checkpoint, path)


def test_file_with_unsafe_pickled_object_is_refused_naming_the_object(folder: Path) -> None:
    path = folder / "last.pt"
    write_unsafe_pickle(path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (
        f"checkpoint {path}: holds code that was not run (unsafe pickle global collections.deque); "
        "delete it or resume from another checkpoint"
    )


class RunsAShellCommand:
    """Unpickling this would run `touch <marker>`: what a planted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious_checkpoint(path: Path, marker: Path) -> None:
    torch.save({**tiny_checkpoint(epoch=1, global_step=1), "model": RunsAShellCommand(marker)}, path)


def write_raw_pickle(path: Path, marker: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps({**tiny_checkpoint(epoch=1, global_step=1), "hook": RunsAShellCommand(marker)}))


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (write_malicious_checkpoint, "holds code that was not run (unsafe pickle global posix.system)"),
        (write_raw_pickle, "a raw pickle (pickle.dump or torch's legacy format), not a torch.save archive"),
        (lambda path, marker: path.write_bytes(b""), "empty file (0 bytes)"),
    ],
    ids=["malicious", "raw-pickle", "zero-bytes"],
)
def test_a_planted_file_gets_its_own_reason_never_runs_and_never_advises_unsafe_loading(
    folder: Path, write, reason: str
) -> None:
    marker = folder.parent / "code-ran"
    path = folder / "last.pt"
    write(path, marker)
    manager = CheckpointManager(folder)
    for load in (load_checkpoint, peek_checkpoint):
        with pytest.raises(CheckpointError) as caught:
            load(path)
        assert str(caught.value).startswith(f"checkpoint {path}: {reason}"), caught.value
        assert "weights_only" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        manager.find_resume_checkpoint()
    assert [(skipped, why.startswith(reason)) for skipped, why in manager.skipped] == [(path, True)]
    assert not marker.exists(), "loading ran the file's code"


def test_resume_falls_back_to_newest_valid_epoch_file_and_reports_skipped(folder: Path) -> None:
    manager = CheckpointManager(folder, keep_last=3)
    for epoch in (1, 2, 3):
        manager.save(tiny_checkpoint(epoch=epoch, global_step=10 * epoch), epoch_file=True)
    write_truncated(folder / "last.pt")
    write_random_bytes(folder / "checkpoint_epoch_3.pt")

    path, checkpoint = manager.find_resume_checkpoint()

    assert path == folder / "checkpoint_epoch_2.pt"
    assert checkpoint["global_step"] == 20
    assert [skipped for skipped, _ in manager.skipped] == [folder / "last.pt", folder / "checkpoint_epoch_3.pt"]
    assert all("truncated or corrupt" in reason for _, reason in manager.skipped)


def test_resume_prefers_highest_global_step_and_last_on_ties(folder: Path) -> None:
    manager = CheckpointManager(folder, keep_last=3)
    manager.save(tiny_checkpoint(epoch=2, global_step=20), epoch_file=True)
    assert manager.find_resume_checkpoint()[0] == folder / "last.pt"
    save_checkpoint(manager.epoch_path(3), tiny_checkpoint(epoch=3, global_step=30))  # killed before last.pt
    path, checkpoint = manager.find_resume_checkpoint()
    assert (path, checkpoint["global_step"]) == (folder / "checkpoint_epoch_3.pt", 30)
    assert manager.skipped == []


def test_resume_without_valid_checkpoint_says_how_to_fix(folder: Path) -> None:
    manager = CheckpointManager(folder)
    with pytest.raises(CheckpointError, match="no valid checkpoint in .*nothing to resume from"):
        manager.find_resume_checkpoint()
    write_random_bytes(folder / "last.pt")
    with pytest.raises(CheckpointError, match=r"\(1 unreadable file\(s\) skipped\)"):
        manager.find_resume_checkpoint()


def test_no_valid_checkpoint_names_each_skipped_file_and_why_on_its_own_line(folder: Path) -> None:
    manager = CheckpointManager(folder, keep_last=3)
    manager.save(tiny_checkpoint(epoch=1, global_step=1), epoch_file=True)
    write_unsafe_pickle(folder / "last.pt")
    write_truncated(folder / "checkpoint_epoch_1.pt")

    with pytest.raises(CheckpointError) as caught:
        manager.find_resume_checkpoint()

    first, *skipped = str(caught.value).splitlines()
    assert first == f"no valid checkpoint in {folder} (2 unreadable file(s) skipped); nothing to resume from"
    assert skipped[0] == "  last.pt: holds code that was not run (unsafe pickle global collections.deque)"
    assert re.fullmatch(r"  checkpoint_epoch_1\.pt: truncated or corrupt \(\w+: .+\)", skipped[1]), skipped[1]
    assert len(skipped) == 2
    assert [(path.name, "\n" in reason, str(folder) in reason) for path, reason in manager.skipped] == [
        ("last.pt", False, False), ("checkpoint_epoch_1.pt", False, False)]


def test_keep_last_prunes_old_epoch_files_only(folder: Path) -> None:
    manager = CheckpointManager(folder, keep_last=2)
    for epoch in range(1, 6):
        written = manager.save(tiny_checkpoint(epoch=epoch, global_step=epoch), epoch_file=True)
        assert written == {"last": folder / "last.pt", "epoch": folder / f"checkpoint_epoch_{epoch}.pt"}
    assert manager.save(tiny_checkpoint(epoch=6, global_step=6), epoch_file=False) == {"last": folder / "last.pt"}
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_epoch_4.pt", "checkpoint_epoch_5.pt", "last.pt"]
    assert load_checkpoint(folder / "last.pt")["global_step"] == 6


@pytest.mark.parametrize(
    ("mode", "metrics", "improving", "beats_best", "misses_best"),
    [
        ("max", [0.5, 0.4, 0.7, 0.7, 0.6], [True, False, True, False, False], 0.71, 0.7),
        ("min", [0.5, 0.6, 0.3, 0.3, 0.4], [True, False, True, False, False], 0.29, 0.3),
    ],
)
def test_best_written_only_on_improvement_and_recovered(
    folder: Path, mode: str, metrics: list, improving: list, beats_best: float, misses_best: float
) -> None:
    manager = CheckpointManager(folder, metric_mode=mode)
    for epoch, metric in enumerate(metrics, start=1):
        written = manager.save(tiny_checkpoint(epoch=epoch, global_step=epoch), epoch_file=False, metric=metric)
        assert ("best" in written) == improving[epoch - 1]
    best = load_checkpoint(folder / "best.pt")
    assert (best["epoch"], best["best_metric"]) == (3, metrics[2])
    assert load_checkpoint(folder / "last.pt")["best_metric"] == metrics[2]

    resumed = CheckpointManager(folder, metric_mode=mode)
    assert resumed.best_metric == metrics[2]
    assert not resumed.is_better(misses_best)
    assert resumed.is_better(beats_best)
    assert not resumed.is_better(float("nan"))


def test_invalid_options_are_named(folder: Path) -> None:
    with pytest.raises(ValueError, match="metric_mode"):
        CheckpointManager(folder, metric_mode="maximum")
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(folder, keep_last=0)


def test_manager_ignores_and_removes_stale_temp_files(folder: Path) -> None:
    save_checkpoint(folder / "last.pt", tiny_checkpoint(epoch=1, global_step=1))
    stale = [folder / ".last.pt.a1b2c3.tmp", folder / ".checkpoint_epoch_2.pt.d4e5.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    manager = CheckpointManager(folder)
    assert not any(path.exists() for path in stale)
    assert manager.find_resume_checkpoint()[0] == folder / "last.pt"


def test_unwrap_model_removes_data_parallel() -> None:
    model = torch.nn.Linear(2, 2)
    assert unwrap_model(torch.nn.DataParallel(model)) is model
    assert unwrap_model(model) is model


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_unwrap_model_removes_torch_compile_and_nested_wrappers() -> None:
    model = torch.nn.Linear(2, 2)
    assert unwrap_model(torch.nn.DataParallel(torch.compile(model))) is model


def test_ddp_wrapped_model_saves_plain_keys_and_loads_either_way(tmp_path: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        wrapped = DistributedDataParallel(torch.nn.Linear(4, 3))
        path = save_checkpoint(tmp_path / "ckpt.pt", build_checkpoint(model=wrapped, epoch=0, global_step=0))
        saved = load_checkpoint(path)
        assert set(saved["model"]) == {"weight", "bias"}

        torch.manual_seed(1)
        plain, other_wrapped = torch.nn.Linear(4, 3), DistributedDataParallel(torch.nn.Linear(4, 3))
        restore_checkpoint(saved, model=plain, restore_rng=False)
        restore_checkpoint(saved, model=other_wrapped, restore_rng=False)
        for model in (plain, other_wrapped.module):
            torch.testing.assert_close(model.weight, wrapped.module.weight, rtol=0, atol=0)
    finally:
        dist.destroy_process_group()


class Mismatched(torch.nn.Module):
    """tiny_checkpoint's Linear(2, 2) renamed and resized: wrong shapes, missing and unexpected keys."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3, 2))  # (3, 2) where the checkpoint has (2, 2)
        for name in ("alpha", "beta", "gamma", "delta"):
            self.register_buffer(name, torch.zeros(1))


def test_a_checkpoint_that_does_not_fit_counts_and_names_the_mismatched_keys(folder: Path) -> None:
    saved = load_checkpoint(save_checkpoint(folder / "c.pt", tiny_checkpoint(epoch=0, global_step=0)))
    with pytest.raises(CheckpointError) as caught:
        restore_checkpoint(saved, model=Mismatched(), restore_rng=False)
    assert str(caught.value) == (
        "checkpoint weights do not fit the model Mismatched: "
        "4 missing keys (alpha, beta, gamma, ...), 1 unexpected key (bias), "
        "1 key of the wrong shape (weight: checkpoint (2, 2), model (3, 2)); "
        "resume with the config the checkpoint was trained with"
    )


def test_restore_into_a_different_model_raises_checkpoint_error(folder: Path) -> None:
    saved = load_checkpoint(save_checkpoint(folder / "c.pt", tiny_checkpoint(epoch=0, global_step=0)))
    with pytest.raises(CheckpointError, match="do not fit the model"):
        restore_checkpoint(saved, model=torch.nn.Linear(3, 3))
    with pytest.raises(CheckpointError, match="no optimizer state"):
        model = torch.nn.Linear(2, 2)
        restore_checkpoint(saved, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


SAVE_LOOP = """
import sys
from pathlib import Path
import torch
from utils.checkpointing.io import build_checkpoint, save_checkpoint

model = torch.nn.Linear(2000, 2000)  # about 16 MB, so each save takes a while
for step in range(1, 100_000):
    with torch.no_grad():
        model.bias[0] = step
    save_checkpoint(Path(sys.argv[1]), build_checkpoint(model=model, epoch=step, global_step=step))
    print("saved", step, flush=True)
"""


def wait_for_save_in_progress(folder: Path, child: subprocess.Popen, deadline_s: float = 30) -> None:
    """Poll until a temp file beside last.pt has data in it, i.e. a save is being written."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and child.poll() is None:
        for path in folder.glob(".last.pt.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size > 0:
                    return
        time.sleep(0.001)
    pytest.fail("saw no save in progress (no non-empty .last.pt.*.tmp beside last.pt)")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_during_save_leaves_previous_checkpoint_loadable(tmp_path: Path) -> None:
    last = tmp_path / "checkpoints" / "last.pt"
    complete_saves = random.randint(1, 3)
    child = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(last)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        reported = [child.stdout.readline().strip() for _ in range(complete_saves)]
        wait_for_save_in_progress(last.parent, child)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=60)
    assert reported == [f"saved {step}" for step in range(1, complete_saves + 1)], stderr
    assert child.returncode == -signal.SIGKILL

    checkpoint = load_checkpoint(last)
    assert checkpoint["global_step"] >= complete_saves
    assert checkpoint["model"]["bias"][0].item() == checkpoint["global_step"]
    assert [path.name for path in last.parent.glob("*.pt")] == ["last.pt"]
    manager = CheckpointManager(last.parent)
    assert manager.find_resume_checkpoint()[0] == last
    assert [path.name for path in last.parent.iterdir()] == ["last.pt"]


def test_weights_that_do_not_fit_leave_every_weight_of_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    saved = build_checkpoint(model=torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 3)), epoch=0,
                             global_step=0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 4))  # layer 0 fits, layer 1 does not
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="do not fit the model Sequential: 2 keys of the wrong shape"):
        restore_checkpoint(saved, model=model, restore_rng=False)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_an_optimizer_state_that_does_not_fit_is_a_checkpoint_error_naming_the_optimizer() -> None:
    model = torch.nn.Linear(2, 2)
    other = torch.nn.Linear(2, 2)
    two_groups = torch.optim.SGD([{"params": [other.weight]}, {"params": [other.bias]}], lr=0.1)
    saved = build_checkpoint(model=other, optimizer=two_groups, epoch=0, global_step=0)
    with pytest.raises(CheckpointError, match=r"checkpoint optimizer state does not fit the SGD: ValueError: .*; "
                                              "resume with the config"):
        restore_checkpoint(saved, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_the_manager_alone_decides_the_stored_best_metric(folder: Path) -> None:
    manager = CheckpointManager(folder, metric_mode="min")
    claimed = build_checkpoint(model=torch.nn.Linear(2, 2), epoch=1, global_step=1, best_metric=0.01)
    manager.save(claimed, epoch_file=False, metric=None)
    assert load_checkpoint(folder / "last.pt")["best_metric"] is None, "no metric was handed to the manager"
    manager.save(claimed, epoch_file=False, metric=0.4)
    assert load_checkpoint(folder / "best.pt")["best_metric"] == 0.4
