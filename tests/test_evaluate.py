"""05_evaluate.py and load_trained on a digits run that the real 02_train.py trained once for this
module: the README's "After training" blocks run as written, the numbers are training's to the last
bit, nothing training wrote changes, and bad inputs exit 2 with one line and create nothing."""

import hashlib
import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import prewarmed
from conftest import REPO_ROOT, SRC, run_in_group, subprocess_env
from data.digits_images import digits_csv
from data.splits import split_indices
from train_support import make_run, train
from utils.checkpointing.io import peek_checkpoint
from utils.runs.run import Run
from utils.run_guard import claim_run

README = (REPO_ROOT / "README.md").read_text()
EVALUATE = next(block for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
                if block.startswith("python src/05_evaluate.py"))
PREDICT = next(block for block in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "load_trained(" in block)
evaluate_cli = importlib.import_module("05_evaluate")


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """digits/baseline trained for 1 epoch, then the README's evaluate block run as written."""
    root = tmp_path_factory.mktemp("evaluate") / "experiments"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("OMP_NUM_THREADS", "1")
        run = make_run("digits", "baseline", "training.epochs=1")
        done = train("digits", "baseline")
        assert done.returncode == 0, done.stderr
        before = _files(run)
        script = f"set -e\n{prewarmed.bash_path_export()}\n{EVALUATE}"
        evaluated = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240,
                                   cwd=REPO_ROOT, env=subprocess_env(), check=False)
    return {"root": root, "run": run, "before": before, "after": _files(run), "evaluated": evaluated}


@pytest.fixture
def in_root(trained: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's EXPERIMENTS_ROOT is the module's, which holds the trained run."""
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(trained["root"]))
    return trained["root"]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "logs" / "evaluations.jsonl").read_text().splitlines()]


def _logged(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "logs" / "metrics.csv")  # floats written with repr read back exactly


def test_the_readme_evaluate_block_gives_exactly_the_values_training_logged(trained):
    assert trained["evaluated"].returncode == 0, trained["evaluated"].stderr
    run, logged = trained["run"], _logged(trained["run"])
    best, last = _records(run)[:2]  # the block's two lines come first
    tested = logged.dropna(subset=["test/loss"]).iloc[-1]
    assert best["metrics"] == {"test/loss": tested["test/loss"], "test/accuracy": tested["test/accuracy"]}
    validated = logged.dropna(subset=["val/loss"]).iloc[-1]  # last.pt holds the final epoch's weights
    assert last["metrics"] == {"val/loss": validated["val/loss"], "val/accuracy": validated["val/accuracy"]}
    assert "test/accuracy" in trained["evaluated"].stdout and "val/accuracy" in trained["evaluated"].stdout


def test_the_record_names_the_checkpoint_its_counters_and_its_sha256(trained):
    run = trained["run"]
    for record, name, split in zip(_records(run)[:2], ("best.pt", "last.pt"), ("test", "val")):
        path = run / "checkpoints" / name
        checkpoint = peek_checkpoint(path)
        assert (record["checkpoint"], record["split"]) == (name, split)
        assert (record["epoch"], record["step"]) == (checkpoint["epoch"], checkpoint["global_step"])
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["time"].endswith("+00:00")
        environment = record["environment"]
        assert environment["packages"]["torch"] == importlib.metadata.version("torch")
        assert environment["world_size"] == 1 and "commit" in environment["git"]
    sessions = [json.loads(line) for line in (run / "logs" / "sessions.jsonl").read_text().splitlines()]
    evaluations = [session for session in sessions if session["kind"] == "evaluate"]
    assert [session["session"] for session in evaluations] == [record["session"] for record in _records(run)]
    assert all(session["exit_status"] == 0 and session["evaluation"]["split"] in ("test", "val")
               for session in evaluations)


def test_evaluate_changes_no_checkpoint_csv_or_tensorboard_file(trained):
    before, after = trained["before"], trained["after"]
    assert any(name.startswith("logs/events.out.tfevents") for name in before), "TensorBoard wrote events"
    kept = {name for name in before if name.startswith(("checkpoints/", "logs/")) and name != "logs/sessions.jsonl"}
    assert {name: after[name] for name in kept} == {name: before[name] for name in kept}
    sessions = "logs/sessions.jsonl"  # append-only: each evaluation adds its line after training's
    assert after[sessions].startswith(before[sessions]) and after[sessions].count(b"\n") == before[sessions].count(b"\n") + 2
    added = {name for name in set(after) - set(before) if not name.startswith("logs/git_diff-")}  # a dirty tree's diff
    assert added - {"logs/evaluations.jsonl"} == {
        f"visualizations/eval/{folder}/{name}.png"
        for folder in ("best-test", "last-val") for name in ("confusion_matrix", "predictions")
    }


def test_the_drawings_are_pngs(trained):
    for path in (trained["run"] / "visualizations" / "eval").rglob("*.png"):
        assert path.read_bytes().startswith(b"\x89PNG")


def test_the_readme_predict_block_runs_with_only_the_import_path_it_names(trained):
    env = subprocess_env(EXPERIMENTS_ROOT=str(trained["root"]))
    env.pop("PYTHONPATH")  # a notebook started from the project's root: the block's sys.path line suffices
    result = subprocess.run([sys.executable, "-c", PREDICT], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predicted: [" in result.stdout and "true:      [0, 1, 2, 3, 4]" in result.stdout
    assert "best.pt" in result.stdout


def test_predict_on_raw_images_does_what_the_model_did_in_training(trained, in_root):
    from training.inference import load_trained

    table = np.loadtxt(digits_csv(), delimiter=",", dtype=np.float32)  # rows: 64 raw pixels of 0..16, the label
    test = split_indices(len(table), 0.15, 0.15, 0)["test"]  # the default config's split, seed 0
    raw, labels = table[test, :-1], torch.from_numpy(table[test, -1]).long()
    loaded = load_trained("digits", "baseline")
    assert not loaded.model.training and loaded.path.name == "best.pt"
    predictions = loaded.predict(raw)
    accuracy = (predictions == labels).sum().item() / len(labels)  # as the task's summarize divides
    assert accuracy == _logged(trained["run"])["test/accuracy"].dropna().iloc[-1]  # exactly the test split's
    dataset_images = loaded.task.build_datasets().test.tensors[0]  # what training fed the model
    assert torch.equal(predictions, loaded.model(dataset_images).argmax(dim=1))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() if path.is_file() else b"<dir>"
            for path in sorted(root.rglob("*"))}


@pytest.mark.parametrize("args, message", [
    (["--split", "tset"], "invalid choice: 'tset'"),
    (["--checkpoint", "checkpoint_epoch_9.pt"], "checkpoint 'checkpoint_epoch_9.pt' does not exist"),
    (["--checkpoint", "/nonexistent/model.pt"], "does not exist in run digits/baseline"),
    (["--set", "model.hidden=64"], "does not fit the DigitsCNN"),
    (["--set", "data.batch_size=0"], "data.batch_size"),
    (["--device", "tpu"], "--device"),
])
def test_bad_inputs_exit_2_with_one_line_and_create_nothing(args, message, in_root, capsys):
    before = _snapshot(in_root)
    code = _exit_code(["-e", "digits", "-r", "baseline", "--device", "cpu", *args])
    error = capsys.readouterr().err
    assert code == 2 and message in error and error.count("\n") == 1, error
    assert _snapshot(in_root) == before


def _exit_code(argv: list[str]) -> int:
    """main()'s exit code, also when argparse exits (an unknown split)."""
    try:
        return evaluate_cli.main(argv)
    except SystemExit as exit:
        return exit.code


def test_a_run_that_never_trained_exits_2_and_gets_no_lock_file(in_root, capsys):
    fresh = make_run("digits", "fresh")
    before = _snapshot(fresh)
    assert evaluate_cli.main(["-e", "digits", "-r", "fresh", "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert "run digits/fresh has not trained" in error and "02_train.py -e digits -r fresh" in error
    assert _snapshot(fresh) == before


def test_evaluate_refuses_while_the_run_is_held_by_a_training_session(in_root, capsys):
    run = Run.require("digits", "baseline")
    records = len(_records(run.path))
    lock = claim_run(run)  # what a running 02_train.py holds (flock: a second open file conflicts in one process too)
    try:
        assert evaluate_cli.main(["-e", "digits", "-r", "baseline", "--device", "cpu"]) == 2
    finally:
        lock.release()
    error = capsys.readouterr().err
    assert "in use by another training session" in error and error.count("\n") == 1
    assert len(_records(run.path)) == records


def test_help_shows_an_example():
    result = subprocess.run([sys.executable, str(SRC / "05_evaluate.py"), "--help"], capture_output=True,
                            text=True, timeout=60, env=subprocess_env(), check=False)
    assert result.returncode == 0 and "python src/05_evaluate.py -e example -r first" in result.stdout


@pytest.mark.slow
def test_under_torchrun_the_ranks_sums_are_added_and_rank_0_alone_records(trained):
    run = trained["run"]
    records = len(_records(run))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(SRC / "05_evaluate.py"), "-e", "digits", "-r", "baseline", "--device", "cpu"]
    result = run_in_group(command, timeout=240, cwd=REPO_ROOT,
                          env=subprocess_env(EXPERIMENTS_ROOT=str(trained["root"]), OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("test/accuracy") == 1, "only rank 0 prints"
    added = _records(run)[records:]
    assert len(added) == 1 and added[0]["world_size"] == 2
    single = _records(run)[0]["metrics"]  # best.pt on test in one process
    assert added[0]["metrics"]["test/accuracy"] == single["test/accuracy"]  # counts: exact over any sharding
    # each batch's loss is a float32 sum over other samples than in one process: equal to float32 precision
    assert added[0]["metrics"]["test/loss"] == pytest.approx(single["test/loss"], rel=1e-6)
