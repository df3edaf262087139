"""FSDP2 (`training.parallel = "fsdp"`) under a real torchrun with two gloo ranks on the CPU.

One module fixture trains four small runs that every test reads: an uninterrupted FSDP run, an
FSDP run that a real SIGTERM to rank 1 stops part-way, that run resumed under FSDP, and a copy
of it resumed under DDP. The copy resumed in one process trains in this process.
"""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from train_support import make_run, read_metrics
from training.parallel import check_parallel
from training.run_config import parse_run_config
from training.session import run_session
from utils.checkpointing.io import load_checkpoint
from utils.configs import load_config_file
from utils.errors import ConfigValueError
from utils.runs.run import Run

pytestmark = pytest.mark.slow

# A torchrun worker: rank 1 sends itself a real SIGTERM after optimizer step SIGTERM_AT_STEP, and
# each rank prints where its loop stopped and how many parameters it holds, then runs 02_train.py
WORKER = """\
import os, runpy, signal, sys
from training.trainer import Trainer

step, fit = Trainer._optimizer_step, Trainer.fit


def step_then_signal(self):
    step(self)
    if os.environ["RANK"] == "1" and os.environ.get("SIGTERM_AT_STEP") == str(self.state.global_step + 1):
        os.kill(os.getpid(), signal.SIGTERM)


def fit_and_report(self):
    try:
        fit(self)
    finally:
        held = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in self.model.parameters())
        total = sum(p.numel() for p in self.model.parameters())
        print(f"rank {os.environ['RANK']} stopped at step {self.state.global_step} holding {held} of {total}",
              flush=True)


Trainer._optimizer_step, Trainer.fit = step_then_signal, fit_and_report
sys.argv = [SCRIPT, *sys.argv[1:]]
runpy.run_path(SCRIPT, run_name="__main__")
"""
# each rank trains 635 of the 1,270 training images in 10 batches of 64, two per optimizer step:
# 5 steps an epoch. 257 validation images leave the ranks 129 and 128 (3 and 2 batches of 64): a
# sharded forward is a collective, so evaluation must run as many on both ranks
TINY = ("training.parallel=fsdp", "model.channels=[4,8]", "model.hidden=16", "training.epochs=2",
        "training.accumulate_steps=2", "data.val_fraction=0.143", "training.stop_check_every=2",
        "logging.tensorboard=false", "deterministic=true")
STEPS = 2 * 5
CUT_AT = 7  # rank 1 is signalled during step 7 (epoch 2); the ranks agree to stop at step 8
REPORT = re.compile(r"rank (\d) stopped at step (\d+) holding (\d+) of (\d+)")


def _torchrun(worker: Path, run: str, *args: str, **env: str) -> tuple[int, dict[int, tuple[int, int, int]], str]:
    """Exit code, each rank's (stop step, parameters held, parameters in all) and stderr's tail."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
               "-e", "exp", "-r", run, "--device", "cpu", *args]
    done = run_in_group(command, timeout=120, cwd=REPO_ROOT, env=subprocess_env(OMP_NUM_THREADS="1", **env))
    reports = {int(rank): (int(step), int(held), int(total)) for rank, step, held, total in REPORT.findall(done.stdout)}
    return done.returncode, reports, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The run folders and what their torchrun jobs reported."""
    tmp = tmp_path_factory.mktemp("fsdp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(tmp / "experiments"))
        patch.setenv("WANDB_MODE", "offline")
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "CURRENT_EXP", "CURRENT_RUN"):
            patch.delenv(name, raising=False)
        worker = tmp / "worker.py"
        worker.write_text(f"SCRIPT = {str(SRC / '02_train.py')!r}\n{WORKER}")
        whole, cut = make_run("exp", "whole", *TINY), make_run("exp", "cut", *TINY)
        reports = {"whole": _torchrun(worker, "whole"), "cut": _torchrun(worker, "cut", SIGTERM_AT_STEP=str(CUT_AT))}
        copies = {name: tmp / "experiments" / "exp" / name for name in ("cut-ddp", "cut-single")}
        for copy in copies.values():
            shutil.copytree(cut, copy)
        cut_checkpoint = load_checkpoint(cut / "checkpoints" / "last.pt")
        reports["resumed"] = _torchrun(worker, "cut", "--resume")
        reports["ddp"] = _torchrun(worker, "cut-ddp", "--resume", "--set", "training.parallel=ddp")
        single = Run.require("exp", "cut-single")
        config = parse_run_config(load_config_file(single.config_file), str(single.config_file))
        exit_code = run_session(single, config, torch.device("cpu"), resume=True).exit_code
        yield {"whole": whole, "cut": cut, **copies, "reports": reports, "cut_checkpoint": cut_checkpoint,
               "single_exit": exit_code}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_fsdp_trains_with_each_rank_holding_half_of_the_parameters(runs):
    code, reports, stderr = runs["reports"]["whole"]
    assert code == 0, stderr
    (_, held_0, total), (_, held_1, _) = reports[0][:3], reports[1][:3]
    assert reports[0][0] == reports[1][0] == STEPS
    assert held_0 + held_1 == total and max(held_0, held_1) < 0.6 * total  # sharded, not replicated
    metrics = read_metrics(runs["whole"])
    assert list(metrics["step"]) == list(range(STEPS))
    losses = metrics["val/loss"].dropna().tolist()
    assert len(losses) == 2 and losses[1] < losses[0]


def test_an_fsdp_run_stopped_by_sigterm_resumes_bit_identical_to_an_uninterrupted_one(runs):
    code, reports, stderr = runs["reports"]["cut"]
    assert code != 0, "torchrun reports workers that exit 143 as failed"
    assert reports[0][0] == reports[1][0] == CUT_AT + 1, reports
    assert runs["cut_checkpoint"]["global_step"] == CUT_AT + 1
    code, reports, stderr = runs["reports"]["resumed"]
    assert code == 0, stderr
    expected, actual = _weights(runs["whole"]), _weights(runs["cut"])
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert read_metrics(runs["cut"])["step"].tolist() == list(range(STEPS))
    expected_metrics, metrics = (read_metrics(runs[run]).filter(regex="^(val|test|train/epoch)").melt().dropna()
                                 for run in ("whole", "cut"))
    assert len(expected_metrics) == 10 and metrics["variable"].tolist() == expected_metrics["variable"].tolist()
    assert metrics["value"].tolist() == pytest.approx(expected_metrics["value"].tolist(), rel=1e-6)


def test_an_fsdp_checkpoint_holds_the_full_state_in_the_layout_of_a_ddp_one(runs):
    fsdp = runs["cut_checkpoint"]
    ddp = load_checkpoint(runs["cut-ddp"] / "checkpoints" / "last.pt")  # written by DDP after the resume
    assert {k: v.shape for k, v in fsdp["model"].items()} == {k: v.shape for k, v in ddp["model"].items()}
    assert all(type(v) is torch.Tensor for v in fsdp["model"].values())  # full tensors, no DTensor shards
    assert [g["params"] for g in fsdp["optimizer"]["param_groups"]] == [g["params"] for g in ddp["optimizer"]["param_groups"]]
    shapes = [{i: {k: v.shape for k, v in s.items()} for i, s in c["optimizer"]["state"].items()} for c in (fsdp, ddp)]
    assert shapes[0] == shapes[1]
    assert all(type(v) is torch.Tensor for s in fsdp["optimizer"]["state"].values() for v in s.values())


def test_an_fsdp_checkpoint_resumes_under_ddp_to_the_same_weights(runs):
    code, reports, stderr = runs["reports"]["ddp"]
    assert code == 0, stderr
    assert reports[0][0] == reports[1][0] == STEPS
    assert reports[0][1] == reports[0][2], "DDP holds every parameter on each rank"
    expected, actual = _weights(runs["whole"]), _weights(runs["cut-ddp"])
    # the same arithmetic but for the order of the gradient norm's sums: equal to float rounding
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5)


def test_an_fsdp_checkpoint_resumes_in_one_process(runs):
    assert runs["single_exit"] == 0
    run = runs["cut-single"]
    finished = load_checkpoint(run / "checkpoints" / "last.pt")
    assert finished["epoch"] == 2 and finished["global_step"] > CUT_AT + 1
    assert f"resuming from {run / 'checkpoints' / 'last.pt'} at epoch 1, step {CUT_AT + 1}" in (
        run / "logs" / "log.txt").read_text()
    assert json.loads((run / "logs" / "summary.json").read_text())["epochs"] == 2


def test_fsdp_refuses_fp16_under_torchrun_with_the_fix(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigValueError, match="use 'bf16'"):
        check_parallel("fsdp", "fp16")
    check_parallel("ddp", "fp16")
    check_parallel("fsdp", "bf16")
