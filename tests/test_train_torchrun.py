"""The same script under a real torchrun with two gloo ranks on the CPU."""

import sys

import pytest

from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from train_support import make_run, read_metrics, tensorboard_steps
from utils.checkpointing.io import load_checkpoint

pytestmark = pytest.mark.slow


def test_two_ranks_train_one_run_with_one_set_of_outputs(experiments_root):
    run_dir = make_run("exp", "ddp", "training.epochs=2")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SRC / "02_train.py"), "-e", "exp", "-r", "ddp", "--device", "cpu",
    ]
    result = run_in_group(command, timeout=300, cwd=REPO_ROOT, env=subprocess_env(OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    steps_per_epoch = 10  # each rank trains 628 of the 1,257 images, batch 64
    metrics = read_metrics(run_dir)
    assert list(metrics["step"]) == list(range(2 * steps_per_epoch))
    assert metrics["test/accuracy"].dropna().iloc[0] > 0.8
    assert tensorboard_steps(run_dir, "train/loss") == list(range(2 * steps_per_epoch))
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 2 * steps_per_epoch
    assert not any(k.startswith("module.") for k in load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    assert [p.name for p in experiments_root.iterdir()] == ["exp"]
    assert [p.name for p in (experiments_root / "exp").iterdir()] == ["ddp"]
    assert len(list((run_dir / "logs").glob("metrics*.csv"))) == 1
    assert result.stdout.count("finished in") == 1  # only rank 0 prints the summary
