"""Runs made from other runs, on the digits task: `training.init_from` (a fine-tune, strict or with
a new head), `01_initialize.py --from` (a fork), and the session records of real sessions.

One source run is trained once for the module; the CLIs run in this process through their `main`
(their exit codes and one-line errors are what is checked), the training sessions too."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from conftest import SRC
from train_support import make_run
from training.init_from import InitConfig, init_model
from training.run_config import parse_run_config
from training.task import TaskContext
from utils.checkpointing.io import load_checkpoint
from utils.configs import load_config_file
from utils.fileio import file_sha256
from utils.git_info import git_commit
from utils.runs.provenance import SESSIONS_FILE, SessionRecord
from utils.runs.run import Run

# one epoch of 5 steps of a narrow CNN: what is checked is which weights go where, not learning
ONE_EPOCH = ("training.epochs=1", "data.batch_size=256", "model.channels=[4,8]", "model.hidden=16")
NEW_HEAD = ("model.hidden=12",)  # the MLP head's hidden layer: the convolutions still fit
HEAD_KEYS = ("head.0.weight", "head.0.bias", "head.4.weight")


def _main(script: str):
    spec = importlib.util.spec_from_file_location(script.replace(".py", ""), SRC / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


train, initialize = _main("02_train.py"), _main("01_initialize.py")


def _train(exp: str, run: str, *args: str) -> int:
    return train(["-e", exp, "-r", run, "--device", "cpu", *args])


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "logs" / SESSIONS_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The module's experiments root, holding `lineage/source`: digits trained for one epoch."""
    root = tmp_path_factory.mktemp("lineage") / "experiments"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root))
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            patch.delenv(name, raising=False)
        make_run("lineage", "source", *ONE_EPOCH)
        assert _train("lineage", "source") == 0
    return root


@pytest.fixture
def shared(root, monkeypatch) -> Path:
    """This test works in the module's root, beside the source run (its own run names)."""
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(root))
    return root


def test_a_training_session_records_its_environment_and_code(shared):
    (record,) = _records(shared / "lineage" / "source")
    assert record["kind"] == "train" and record["exit_status"] == 0 and record["world_size"] == 1
    assert record["packages"]["torch"] == torch.__version__ and "numpy" in record["packages"]
    assert record["git"]["commit"] == git_commit() and isinstance(record["git"]["dirty"], bool)
    assert record["start"] <= record["end"]
    log = (shared / "lineage" / "source" / "logs" / "log.txt").read_text()
    assert f"session {record['session']} (train): git commit {git_commit()}" in log


def test_init_from_a_run_loads_its_best_weights_into_a_matching_model_strictly(shared):
    config = parse_run_config(load_config_file(make_run("lineage", "strict", *ONE_EPOCH, "training.init_from=lineage/source")
                                               / "config.json"))
    model = config.task(TaskContext(config.parsed, 0, torch.device("cpu"))).build_model()
    record = SessionRecord(Run.resolve("lineage", "strict"), "train", "s", None)
    notes = init_model(model, config[InitConfig], resumed=False, record=record)
    best = shared / "lineage" / "source" / "checkpoints" / "best.pt"
    source = load_checkpoint(best)["model"]
    assert all(torch.equal(value, source[key]) for key, value in model.state_dict().items())
    assert record.fields["init_from"]["sha256"] == file_sha256(best) and record.fields["init_from"]["not_loaded"] == []
    assert len(notes) == 1 and f"loaded {len(source)} of the model's {len(source)} weights" in notes[0]


def test_a_changed_head_with_init_strict_exits_2_naming_the_keys_and_leaves_the_run_as_it_was(shared, capsys):
    folder = make_run("lineage", "strict-head", *ONE_EPOCH, *NEW_HEAD, "training.init_from=lineage/source")
    assert _train("lineage", "strict-head") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "training.init_from='lineage/source'" in line and "3 keys of the wrong shape" in line
    assert all(key in line for key in HEAD_KEYS) and "training.init_strict=false" in line
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["config.json"]


def test_a_new_head_without_init_strict_loads_the_rest_names_the_head_in_one_line_and_a_resume_ignores_it(
    shared,
):
    folder = make_run("lineage", "new-head", *ONE_EPOCH, *NEW_HEAD,
                      "training.init_from=lineage/source:last", "training.init_strict=false")
    assert _train("lineage", "new-head") == 0
    log = (folder / "logs" / "log.txt").read_text()
    (line,) = [line for line in log.splitlines() if "not loaded (init_strict=false)" in line]
    assert all(key in line for key in HEAD_KEYS) and "head.4.bias" not in line
    last = shared / "lineage" / "source" / "checkpoints" / "last.pt"
    assert f"from {last} (sha256 {file_sha256(last)})" in log

    assert _train("lineage", "new-head", "--resume", "--set", "training.epochs=2") == 0
    first, resumed = _records(folder)
    assert first["init_from"]["sha256"] == file_sha256(last) and first["init_from"]["loaded"] == 13
    assert "init_from" not in resumed and resumed["exit_status"] == 0
    assert "training.init_from='lineage/source:last' is not used" in (folder / "logs" / "log.txt").read_text()


def test_from_forks_a_runs_config_with_overrides_and_names_its_parent(shared, capsys):
    assert initialize(["-e", "forks", "-r", "longer", "--from", "lineage/source", "--set", "training.epochs=4"]) == 0
    assert "forked from lineage/source" in capsys.readouterr().out
    source = load_config_file(shared / "lineage" / "source" / "config.json")
    fork_folder = shared / "forks" / "longer"
    fork = load_config_file(fork_folder / "config.json")
    assert fork["meta"]["parent"] == "lineage/source" and fork["meta"]["overrides"] == ["training.epochs=4"]
    assert fork["training"]["epochs"] == 4
    assert {k: v for k, v in fork.items() if k not in ("meta", "training")} == {
        k: v for k, v in source.items() if k not in ("meta", "training")}
    assert [p for p in fork_folder.rglob("*") if p.is_file()] == [fork_folder / "config.json"], "no outputs copied"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--from", "lineage/nope"], "--from: there is no run lineage/nope"),
    (["--from", "lineage/source", "--set", "training.epochs=0"], "training.epochs=0 is out of range"),
    (["--set", "training.init_from=lineage/nope"], "training.init_from='lineage/nope': there is no run lineage/nope"),
    (["--set", "training.init_from=missing/file.pt"], "file.pt does not exist"),
    (["--set", "training.init_from=lineage"], "training.init_from='lineage' is out of range"),
    (["--set", "training.init_from=lineage/source", *(f"--set={o}" for o in (*ONE_EPOCH, *NEW_HEAD))],
     "3 keys of the wrong shape"),
    (["--set", "training.init_from=config.json"], "out of range"),
])
def test_bad_sources_exit_2_with_one_line_and_create_nothing(shared, capsys, args, fragment):
    before = sorted(shared.rglob("*"))
    assert initialize(["-e", "lineage", "-r", "bad", *args]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert fragment in line
    assert sorted(shared.rglob("*")) == before


def test_a_file_that_is_not_a_checkpoint_exits_2_naming_why(shared, tmp_path, capsys):
    for name, content in (("notes.pt", b"not a checkpoint"), ("weights.safetensors", b"nope")):
        (tmp_path / name).write_bytes(content)
        assert initialize(["-e", "lineage", "-r", "bad", "--set", f"training.init_from={tmp_path / name}"]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert str(tmp_path / name) in line and ("corrupt" in line or "not a safetensors file" in line)
    assert not (shared / "lineage" / "bad").exists()


def test_from_and_a_template_together_exit_2(shared, capsys):
    with pytest.raises(SystemExit) as stop:
        initialize(["-e", "lineage", "-r", "bad", "--from", "lineage/source", "-c", "default"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (shared / "lineage" / "bad").exists()
