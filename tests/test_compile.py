"""`training.compile`: a compiled run trains with plain checkpoint keys that an eager run resumes,
and a machine without a working compiler gets a usage error before any step."""

import importlib.util
import json
import subprocess
from typing import Any

import pytest
import torch
from torch import nn

from conftest import REPO_ROOT, SRC
from test_engine_toy_task import CONFIG, ToyRegression, _command, _env  # registers the toy task
from training.task import register_task
from utils.checkpointing.io import load_checkpoint
from utils.management import create_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),  # dynamo's import
]

COMPILING: list[bool] = []  # per forward pass of the probe model: was it being traced by torch.compile?


class TracedLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        COMPILING.append(torch.compiler.is_compiling())
        return super().forward(x)


@register_task
class CompileProbe(ToyRegression):
    """The toy regression with a model that records whether torch.compile traces it."""

    name = "toy_compile_probe"

    def build_model(self) -> nn.Module:
        return TracedLinear(4, 1)


def _config(**training: Any) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["deterministic"] = False  # deterministic would switch this pytest process's kernels
    config["training"].update(training)
    return config


def test_a_compiled_run_saves_the_plain_models_keys_and_an_eager_session_resumes_it():
    spec = importlib.util.spec_from_file_location("train_cli_compile", SRC / "02_train.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    run_dir = create_run("compile", "probe", {**_config(epochs=1, compile=True), "task": "toy_compile_probe"})
    COMPILING.clear()
    assert cli.main(["-e", "compile", "-r", "probe", "--device", "cpu"]) == 0
    assert True in COMPILING, "the model was traced by torch.compile"
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert sorted(last["model"]) == ["bias", "weight"], "no _orig_mod. prefix"

    COMPILING.clear()
    argv = ["-e", "compile", "-r", "probe", "--device", "cpu", "--resume", "--set", "training.epochs=2",
            "--set", "training.compile=false"]
    assert cli.main(argv) == 0
    assert COMPILING and not any(COMPILING), "the resumed session runs eagerly"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 2 * last["global_step"]


@pytest.mark.parametrize(
    ("compiler_env", "message"),
    [
        ({"PATH": "EMPTY"}, "training.compile=true needs a compiler, and none of g++ is on PATH"),
        ({"CXX": "/bin/false"}, "training.compile=true, but torch.compile fails on this machine"),
    ],
    ids=["no-compiler-on-path", "a-broken-compiler"],
)
def test_a_machine_that_cannot_compile_is_told_so_before_any_step(tmp_path, compiler_env, message):
    run_dir = create_run("compile", "nocc", _config(compile=True))
    env = {key: value for key, value in _env().items() if key not in ("CC", "CXX")}
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env.update({key: str(empty) if value == "EMPTY" else value for key, value in compiler_env.items()})
    done = subprocess.run(_command("compile", "nocc"), capture_output=True, text=True, timeout=120, env=env,
                          cwd=REPO_ROOT, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr
    assert "install a C/C++ compiler" in done.stderr and "or set training.compile=false" in done.stderr
    assert not (run_dir / "logs" / "metrics.csv").exists()
    assert not any((run_dir / "checkpoints").iterdir())
