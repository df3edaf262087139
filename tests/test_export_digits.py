"""06_export.py on a digits run trained once for this module: the README's export block runs as
written, and each file it writes, loaded as its user would load it, gives the trained model's
outputs within the format's tolerance."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import torch

import prewarmed
from conftest import REPO_ROOT, subprocess_env
from train_support import make_run
from training.export_checks import TOLERANCES, compare
from training.inference import load_trained
from training.run_config import parse_run_config
from training.session import run_session
from utils.runs.run import Run

README = (REPO_ROOT / "README.md").read_text()
EXPORT = next(block for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
              if block.startswith("python src/06_export.py"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """digits/baseline trained for 1 epoch in this process, then the README's export block run as written."""
    root = tmp_path_factory.mktemp("export") / "experiments"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("OMP_NUM_THREADS", "1")
        run = make_run("digits", "baseline", "training.epochs=1", "logging.tensorboard=false")
        config = parse_run_config(json.loads((run / "config.json").read_text()))
        assert run_session(Run.require("digits", "baseline"), config, torch.device("cpu"), resume=False).exit_code == 0
        script = f"set -e\n{prewarmed.bash_path_export()}\n{EXPORT}"
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                                cwd=REPO_ROOT, env=subprocess_env(), check=False)
    return {"root": root, "run": run, "result": result}


def _run_as_its_user_would(format: str, path: Path, trained, images: torch.Tensor) -> torch.Tensor:
    if format == "safetensors":
        from safetensors.torch import load_file

        model = trained.task.build_model()
        model.load_state_dict(load_file(path))
        return model.eval()(images)
    if format == "pt2":
        return torch.export.load(path).module()(images)
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


def test_the_readme_block_writes_each_format_within_its_tolerance_of_the_trained_model(exported, monkeypatch):
    """One test on the module's run, so that test workers never train it twice."""
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(exported["root"]))
    result, exports = exported["result"], exported["run"] / "exports"
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", "the exporters' own output stays off the console"
    for format in ("safetensors", "pt2", "onnx"):
        assert f"{format}: checked on a batch of 16 (exported with 2): largest |exported - eager| = " in result.stdout
        assert f"wrote {exports / f'best.{format}'} (" in result.stdout
    assert sorted(path.name for path in exports.iterdir()) == ["best.onnx", "best.pt2", "best.safetensors"]

    trained = load_trained("digits", "baseline")
    images = trained.task.example_inputs()[0][:5]  # (5, 1, 8, 8): a batch size neither traced nor checked
    with torch.no_grad():
        eager = trained.model(images)  # (5, 10)
        for format in ("safetensors", "pt2", "onnx"):
            outputs = _run_as_its_user_would(format, exports / f"best.{format}", trained, images)
            difference, limit = compare([outputs], [eager], TOLERANCES[format])
            assert difference <= limit, format
    assert eager.abs().max() > 1.0, "trained logits, not a model that outputs zeros"

    from safetensors import safe_open

    with safe_open(exports / "best.safetensors", "pt") as weights:
        assert weights.metadata() == {"task": "digits", "run": "digits/baseline", "checkpoint": "best.pt",
                                      "epoch": str(trained.epoch), "step": str(trained.step)}
