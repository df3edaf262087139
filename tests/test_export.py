"""training.export on tiny models in this process: each format's bytes, reloaded here as a user
would, give the eager outputs within the format's tolerance on a batch size the export was not
traced with; the check catches an export that does not match; a data-dependent branch fails with
one line naming the format and the model's line. 06_export.py on a task defined here: exit 1 for a
model that cannot be exported, exit 2 for bad input, nothing created either way."""

import io
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import Tensor, nn

from conftest import REPO_ROOT, SRC, run_script, subprocess_env
from test_engine_toy_task import CONFIG, TESTS, ToyRegression

from training.export import EXPORTERS, export_model, export_safetensors, write_export
from training.export_checks import TOLERANCES, check_batches, compare
from utils.errors import ExportError, OutputPathError
from training.run_config import parse_run_config
from training.session import run_session
from training.task import register_task
from utils.management import create_run
from utils.runs.exports import check_out_path, default_export_path
from utils.runs.run import Run


class TwoInputs(nn.Module):
    """A conv branch on an image and a linear branch on a vector, joined: two inputs, two outputs
    (a tuple), batch norm and dropout in eval mode, a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.vector = nn.Linear(3, 4)
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(4 * 6 * 6 + 4, 5))
        self.register_buffer("offset", torch.zeros(5))

    def forward(self, image: Tensor, vector: Tensor) -> tuple[Tensor, Tensor]:
        features = torch.cat([self.conv(image).flatten(1), self.vector(vector)], dim=1)  # (B, 148)
        logits = self.head(features) + self.offset  # (B, 5)
        return logits, logits.softmax(dim=1)


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.export cannot trace both ways."""

    def __init__(self, features: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return self.linear(x)
        return self.linear(-x)


@register_task
class BranchyToy(ToyRegression):
    """The toy regression of tests/test_engine_toy_task.py with a model that cannot be exported."""

    name = "toy_branchy"

    def build_model(self) -> nn.Module:
        return DataDependent(features=4)


# 06_export.py as a user runs it, after this module has registered its task
LAUNCH = "import runpy, sys; import test_export; sys.argv = ['06_export.py', *sys.argv[1:]]; runpy.run_path({!r}, run_name='__main__')"


def _trained_looking() -> TwoInputs:
    """Seeded weights and batch-norm statistics that are not the defaults, in eval mode."""
    torch.manual_seed(0)
    model = TwoInputs()
    with torch.no_grad():
        model.conv[1].running_mean.uniform_(-1, 1)
        model.conv[1].running_var.uniform_(0.5, 2)
        model.offset.uniform_(-1, 1)
    return model.eval()


def _inputs(batch: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(batch)
    return torch.randn(batch, 1, 6, 6, generator=generator), torch.randn(batch, 3, generator=generator)


def _reloaded(format: str, data: bytes):
    """The artefact as its user loads it: a callable from inputs to a list of output tensors."""
    if format == "safetensors":
        from safetensors.torch import load

        fresh = TwoInputs()
        fresh.load_state_dict(load(data))
        return lambda *batch: list(fresh.eval()(*batch))
    if format == "pt2":
        module = torch.export.load(io.BytesIO(data)).module()
        return lambda *batch: list(module(*batch))
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [given.name for given in session.get_inputs()]
    return lambda *batch: [torch.from_numpy(out) for out in session.run(None, {n: x.numpy() for n, x in zip(names, batch)})]


@pytest.mark.parametrize("format", list(EXPORTERS))
def test_each_format_reloaded_gives_eager_outputs_within_its_tolerance_on_another_batch_size(format, tmp_path):
    model = _trained_looking()
    export = export_model(format, model, _inputs(6), TwoInputs)
    assert (export.traced_batch, export.checked_batch) == (2, 6)
    assert export.difference <= export.limit
    path = tmp_path / "out" / f"model.{format}"
    path.parent.mkdir()
    write_export(export, path)
    assert path.read_bytes() == export.data and list(path.parent.iterdir()) == [path], "no temp file left"

    batch = _inputs(5)  # neither the traced 2 nor the checked 6
    with torch.no_grad():
        eager = list(model(*batch))
        exported = _reloaded(format, path.read_bytes())(*batch)
    difference, limit = compare(exported, eager, TOLERANCES[format])
    assert difference <= limit
    assert [out.shape for out in exported] == [(5, 5), (5, 5)]


class Scaled(TwoInputs):
    """A non-persistent buffer is left out of the state_dict: a fresh model has its initial value."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(1), persistent=False)

    def forward(self, image: Tensor, vector: Tensor) -> tuple[Tensor, Tensor]:
        logits, _ = super().forward(image, vector)
        return logits * self.scale, logits.softmax(dim=1)


def test_the_check_refuses_weights_that_do_not_round_trip():
    model = Scaled().eval()
    model.scale.fill_(2.0)
    with pytest.raises(ExportError, match=r"^safetensors: largest \|exported - eager\| = \S+ exceeds the tolerance 0 "):
        export_safetensors(model, _inputs(4), Scaled)


def test_weights_that_do_not_fit_the_fresh_model_are_named_in_one_line():
    with pytest.raises(ExportError) as raised:
        export_safetensors(_trained_looking(), _inputs(4), lambda: nn.Linear(3, 5))
    assert str(raised.value).startswith("safetensors: the weights did not round-trip: RuntimeError: Error(s) in loading")
    assert "Missing key(s)" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("format", ["pt2", "onnx"])
def test_a_data_dependent_branch_fails_with_one_line_naming_the_format_and_the_models_line(format, capfd):
    capfd.readouterr()
    with pytest.raises(ExportError) as raised:
        export_model(format, DataDependent().eval(), (torch.randn(4, 3),), DataDependent)
    message = str(raised.value)
    assert message.startswith(f"{format}: ") and "\n" not in message
    assert "data-dependent" in message and f"{os.path.basename(__file__)}:" in message and "if x.sum() > 0:" in message
    assert capfd.readouterr() == ("", ""), "the exporter's graphs and warnings stay off the console"


def test_a_single_example_is_tiled_so_the_check_batch_differs_from_the_traced_one():
    traced, checked = check_batches((torch.arange(4.0).view(1, 4),))
    assert traced[0].shape == (2, 4) and checked[0].shape == (3, 4)
    assert torch.equal(checked[0], torch.arange(4.0).repeat(3, 1))


def test_compare_counts_a_one_sided_nan_as_infinite_and_shapes_must_agree():
    nan = torch.tensor([float("nan"), 1.0])
    assert compare([nan], [nan.clone()], TOLERANCES["pt2"])[0] == 0.0
    assert compare([nan], [torch.tensor([0.0, 1.0])], TOLERANCES["pt2"])[0] == float("inf")
    with pytest.raises(ValueError, match=r"output 0 has shape \(2,\), eager \(3,\)"):
        compare([nan], [torch.zeros(3)], TOLERANCES["pt2"])


def test_inputs_without_a_batch_dimension_are_refused_naming_the_format():
    with pytest.raises(ExportError, match=r"^pt2: example inputs must be tensors with a non-empty batch dimension first \(Task.example_inputs\(\)\)$"):
        export_model("pt2", nn.Identity(), (torch.tensor(1.0),), nn.Identity)


def test_an_export_goes_to_the_runs_exports_folder_or_to_an_out_path_inside_the_root(experiments_root, tmp_path):
    create_run("exp", "run", {"task": "toy_regression"})
    run = Run.require("exp", "run")
    assert default_export_path(run, run.checkpoints / "best.pt", "onnx") == run.exports / "best.onnx"
    assert run.exports.is_dir(), "created with the run, like its other folders"
    inside = experiments_root / "exp" / "model.pt2"
    assert check_out_path(str(inside), "pt2") == inside
    refused = {
        str(tmp_path / "model.pt2"): "lies outside the experiments root",
        str(experiments_root / "exp" / "model.onnx"): "a .pt2 file is expected",
        str(experiments_root / "missing" / "model.pt2"): "does not exist; create it first",
        str(experiments_root / ".." / "model.pt2"): "lies outside the experiments root",
    }
    for out, reason in refused.items():
        with pytest.raises(OutputPathError, match=reason):
            check_out_path(out, "pt2")
    os.symlink(tmp_path, experiments_root / "exp" / "link")
    with pytest.raises(OutputPathError, match="lies outside the experiments root"):
        check_out_path(str(experiments_root / "exp" / "link" / "model.pt2"), "pt2")
    run.exports.rmdir()
    os.symlink(tmp_path, run.exports)
    with pytest.raises(OutputPathError, match="exports/best.onnx lies outside the experiments root"):
        default_export_path(run, run.checkpoints / "best.pt", "onnx")


def test_a_run_whose_model_branches_on_data_exits_1_with_one_line_naming_the_format_and_writes_nothing():
    config = json.loads(json.dumps(CONFIG))
    config["task"], config["data"]["samples"], config["training"]["epochs"] = "toy_branchy", 48, 1
    create_run("toy", "branchy", config)
    run = Run.require("toy", "branchy")
    assert run_session(run, parse_run_config(config), torch.device("cpu"), resume=False).exit_code == 0

    env = subprocess_env()
    env["PYTHONPATH"] = f"{TESTS}:{env['PYTHONPATH']}"
    command = [sys.executable, "-c", LAUNCH.format(str(SRC / "06_export.py")), "-e", "toy", "-r", "branchy", "--format", "pt2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=REPO_ROOT, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: pt2: torch.export cannot trace the model: ") and done.stderr.count("\n") == 1
    assert "data-dependent" in done.stderr and "test_export.py" in done.stderr and "if x.sum() > 0:" in done.stderr
    assert done.stdout == "" and list(run.exports.iterdir()) == []


def _files(root) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_an_unknown_format_exits_2_with_one_line_and_creates_nothing(experiments_root):
    create_run("exp", "run", {"task": "toy_regression"})
    before = _files(experiments_root)
    done = run_script("06_export.py", "-e", "exp", "-r", "run", "--format", "tflite")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "invalid choice: 'tflite'" in done.stderr and "onnx" in done.stderr
    assert _files(experiments_root) == before


def test_an_out_path_outside_the_experiments_root_exits_2_and_creates_nothing(experiments_root, tmp_path):
    create_run("exp", "run", {"task": "toy_regression"})
    before = _files(experiments_root)
    target = tmp_path / "outside" / "model.onnx"
    done = run_script("06_export.py", "-e", "exp", "-r", "run", "--format", "onnx", "--out", str(target))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "lies outside the experiments root" in done.stderr
    assert _files(experiments_root) == before and not target.parent.exists()


class Tied(nn.Module):
    """An encoder and a decoder sharing one weight, as language models tie their embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.encode, self.decode = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
        self.decode.weight = self.encode.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x).relu())


def test_tied_weights_are_saved_as_safetensors_and_load_back_tied():
    torch.manual_seed(0)
    export = export_safetensors(Tied().eval(), (torch.randn(4, 4),), Tied)
    assert export.difference == 0.0
    fresh = Tied()
    from safetensors.torch import load

    fresh.load_state_dict(load(export.data))
    assert fresh.decode.weight is fresh.encode.weight
