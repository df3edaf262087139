"""`training.precision`: bf16 autocast on the CPU with an exact resume, fp16's GradScaler state in
checkpoints, and the usage errors (fp16 on a CPU, the old `training.amp` key)."""

import importlib.util
import json
from typing import Any

import pytest
import torch
from torch import nn

from conftest import SRC
from test_engine_toy_task import CONFIG, ToyRegression, _train, check_exact_resume  # registers the toy task
from train_support import read_metrics
from training.precision import MixedPrecision
from training.task import StepOutput, register_task
from utils.checkpointing.io import build_checkpoint, load_checkpoint, restore_checkpoint, save_checkpoint
from utils.management import create_run


def _cli(script: str):
    spec = importlib.util.spec_from_file_location(f"cli_{script[:2]}_precision", SRC / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(precision: str, **training: Any) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["training"].update(precision=precision, **training)
    return config


SEEN_DTYPES: dict[str, set[torch.dtype]] = {"train": set(), "eval": set()}


@register_task
class DtypeProbe(ToyRegression):
    """The toy regression, recording the dtype of the model's output in training and evaluation.

    The output is what autocast controls: losses such as mse_loss are computed in float32 under
    CPU autocast whatever the input, so the prediction is the observable sign of bf16.
    """

    name = "toy_dtype_probe"

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        prediction = model(x)
        SEEN_DTYPES["train"].add(prediction.dtype)
        return StepOutput(nn.functional.mse_loss(prediction.float(), y), len(y))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        SEEN_DTYPES["eval"].add(model(batch[0]).dtype)
        return super().eval_step(model, batch)


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_forward_passes_of_training_and_evaluation_run_in_the_configured_precision(precision, dtype):
    config = _config(precision, epochs=1)
    config.update(task="toy_dtype_probe", deterministic=False)  # deterministic would switch this process's kernels
    create_run("prec", precision, config)
    for seen in SEEN_DTYPES.values():
        seen.clear()
    assert _cli("02_train.py").main(["-e", "prec", "-r", precision, "--device", "cpu"]) == 0
    assert SEEN_DTYPES == {"train": {dtype}, "eval": {dtype}}


def test_fp16_on_a_cpu_is_a_usage_error_before_anything_is_trained(capsys):
    run_dir = create_run("prec", "fp16", _config("fp16"))
    assert _cli("02_train.py").main(["-e", "prec", "-r", "fp16", "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert "training.precision='fp16' needs a CUDA device" in error and "use 'bf16' or 'fp32' on the CPU" in error
    assert not any((run_dir / "logs").iterdir()) and not any((run_dir / "checkpoints").iterdir())


def test_the_old_amp_key_fails_in_both_clis_naming_its_replacement(tmp_path, capsys):
    old = json.loads(json.dumps(CONFIG))
    old["training"]["amp"] = False
    template = tmp_path / "old.json"
    template.write_text(json.dumps(old))
    expected = "training.amp was replaced by training.precision ('fp32' or 'bf16' or 'fp16'"

    assert _cli("01_initialize.py").main(["-e", "prec", "-r", "old", "-c", str(template)]) == 2
    assert expected in capsys.readouterr().err

    run_dir = create_run("prec", "edited", json.loads(json.dumps(CONFIG)))
    (run_dir / "config.json").write_text(json.dumps({**json.loads((run_dir / "config.json").read_text()), **old}))
    assert _cli("02_train.py").main(["-e", "prec", "-r", "edited", "--device", "cpu"]) == 2
    assert expected in capsys.readouterr().err


def test_the_fp16_grad_scaler_state_round_trips_through_a_checkpoint_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = MixedPrecision("fp16", torch.device("cpu"))  # the scaler works alike on the CPU
    initial = precision.scaler.state_dict()
    for factor in (float("inf"), 1.0, 1.0):  # an overflow halves the scale; good steps count to a growth
        with precision.autocast():
            loss = model(torch.randn(8, 4)).float().square().mean() * factor
        precision.backward(loss)
        precision.unscale(optimizer)
        precision.step(optimizer)
        optimizer.zero_grad()
    trained = precision.scaler.state_dict()
    assert trained["scale"] == initial["scale"] / 2 and trained["_growth_tracker"] == 2

    checkpoint = build_checkpoint(model=model, optimizer=optimizer, scaler=precision.scaler, epoch=1, global_step=3)
    path = save_checkpoint(tmp_path / "last.pt", checkpoint)
    fresh = MixedPrecision("fp16", torch.device("cpu"))
    restore_checkpoint(load_checkpoint(path), model=nn.Linear(4, 1), scaler=fresh.scaler, restore_rng=False)
    assert fresh.scaler.state_dict() == trained
    assert fresh.scaler.get_scale() == initial["scale"] / 2


@pytest.mark.slow
def test_bf16_on_the_cpu_stops_and_resumes_to_the_same_weights_as_an_uninterrupted_run():
    _, interrupted = check_exact_resume("bf16", _config("bf16"))
    metrics = read_metrics(interrupted)
    assert metrics["val/mae"].dropna().iloc[-1] < 0.3, "the toy task learns in bf16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 trains on CUDA only")
def test_fp16_on_cuda_checkpoints_the_loss_scale_and_resumes_with_it():
    run_dir = create_run("fp16", "cuda", _config("fp16", epochs=2))
    assert _train("fp16", "cuda", "--device", "cuda").returncode == 0
    scale = load_checkpoint(run_dir / "checkpoints" / "last.pt")["scaler"]["scale"]
    assert scale > 0
    again = _train("fp16", "cuda", "--device", "cuda", "--resume", "--set", "training.epochs=3")
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["scaler"]["scale"] > 0
