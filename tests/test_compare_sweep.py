"""03_compare.py --sweep: the trial table, its CSV export and the parameter plot of one sweep.

Each sweep is a real state file (sweeps.state.write_state) over trials whose metrics.csv a real
Logger wrote; one test reads a run that 02_train.py really trained.
"""

import csv
import json
import math

import pandas as pd
import pytest
from PIL import Image

from conftest import run_script
from sweeps.state import SweepState, TrialRecord, read_state, sweep_dir, write_state
from train_support import make_run, train
from utils.logging import Logger
from utils.management import create_run
from sweeps.table import sweep_frame
from visualization.sweep_plots import draw_sweep

PARAMETERS = {"optimizer.lr": [0.0001, 0.001, 0.1], "model.hidden": [16, 32], "model.channels": [[4, 8], [8, 16]]}
PARAMETER_NAMES = list(PARAMETERS)


def _spec(name: str = "lr-hidden", mode: str = "max", parameters: dict | None = None) -> dict:
    return {
        "name": name, "config": "default", "method": "grid", "parameters": parameters or PARAMETERS,
        "metric": "val/accuracy", "mode": mode, "set": {"training.epochs": 3},
    }


def _log_trial(run: str, accuracies: list[float]) -> None:
    """A trial run whose real Logger wrote train/loss every step and val/accuracy every 10th."""
    create_run("exp", run, {"seed": 0})
    logger = Logger("exp", run)
    logger.initialize_csv()
    for epoch, accuracy in enumerate(accuracies):
        for step in range(epoch * 10, epoch * 10 + 10):
            logger.log({"train/loss": 1.0 / (step + 1)}, step)
        logger.log({"val/accuracy": accuracy, "epoch": epoch + 1}, epoch * 10 + 9)
    logger.finish()


def _trial(number: int, params: dict, state: str, **recorded) -> TrialRecord:
    return TrialRecord(number=number, run=f"lr-hidden-{number:03d}", params=params,
                       config_hash="0" * 64, state=state, **recorded)


def _write_sweep(trials: list[TrialRecord], spec: dict | None = None) -> SweepState:
    spec = spec or _spec()
    state = SweepState(name=spec["name"], experiment="exp", spec=spec, fingerprint=spec, trials=trials)
    write_state(state)
    return state


@pytest.fixture
def sweep() -> SweepState:
    """Five trials: one done and one pruned with recorded values, one interrupted whose values
    only its CSV holds, one failed twice that logged nothing, one pending without a run folder."""
    _log_trial("lr-hidden-000", [0.5, 0.9, 0.88])
    _log_trial("lr-hidden-001", [0.6, 0.95, 0.93])
    _log_trial("lr-hidden-002", [0.5, 0.7, 0.6])
    create_run("exp", "lr-hidden-003", {"seed": 0})
    return _write_sweep([
        _trial(0, {"optimizer.lr": 0.0001, "model.hidden": 16, "model.channels": [4, 8]}, "done", attempts=2,
               best=0.9, final=0.88),
        _trial(1, {"optimizer.lr": 0.1, "model.hidden": 32, "model.channels": [8, 16]}, "pruned", attempts=1,
               best=0.95, final=0.93),
        _trial(2, {"optimizer.lr": 0.001, "model.hidden": 16, "model.channels": [8, 16]}, "interrupted", attempts=1),
        _trial(3, {"optimizer.lr": 0.001, "model.hidden": 32, "model.channels": [4, 8]}, "failed", attempts=2,
               failures=2, exit_code=1),
        _trial(4, {"optimizer.lr": 0.1, "model.hidden": 16, "model.channels": [4, 8]}, "pending"),
    ])


def _table(stdout: str) -> list[list[str]]:
    """The rows of the printed table (title and header excluded), split on whitespace."""
    return [line.split() for line in stdout.splitlines()[2:] if line.startswith("  ")]


def test_table_has_a_row_per_trial_best_first_with_csv_values_for_unrecorded_trials(sweep):
    result = run_script("03_compare.py", "-e", "exp", "--sweep", "lr-hidden", "--no-plot", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("sweep lr-hidden: val/accuracy (max is best), 5 trials: "
                        "1 pending, 1 done, 1 failed, 1 pruned, 1 interrupted")
    assert lines[1].split() == ["trial", *PARAMETER_NAMES, "state", "attempts", "failures", "best", "final"]
    assert _table(result.stdout) == [
        ["*", "lr-hidden-001", "0.1", "32", "[8,", "16]", "pruned", "1", "0", "0.95", "0.93"],
        ["lr-hidden-000", "0.0001", "16", "[4,", "8]", "done", "2", "0", "0.9", "0.88"],
        ["lr-hidden-002", "0.001", "16", "[8,", "16]", "interrupted", "1", "0", "0.7", "0.6"],  # from its CSV
        ["lr-hidden-003", "0.001", "32", "[4,", "8]", "failed", "2", "2", "-", "-"],
        ["lr-hidden-004", "0.1", "16", "[4,", "8]", "pending", "0", "0", "-", "-"],
    ]
    assert not list(sweep_dir("exp", "lr-hidden").glob("*.png"))


def test_export_writes_the_tidy_table_that_pandas_reads_back(sweep, tmp_path):
    out = tmp_path / "tables" / "lr-hidden.csv"
    out.parent.mkdir()
    result = run_script("03_compare.py", "-e", "exp", "--sweep", "lr-hidden", "--export", str(out), "--no-plot",
                        timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"table: {out}" in result.stdout
    table = pd.read_csv(out)
    assert list(table.columns) == ["trial", "number", *PARAMETER_NAMES, "state", "attempts", "failures", "best",
                                   "final"]
    assert list(table["failures"]) == [0, 0, 0, 2, 0]
    assert list(table["number"]) == [1, 0, 2, 3, 4]
    assert list(table["optimizer.lr"]) == [0.1, 0.0001, 0.001, 0.001, 0.1]
    assert [json.loads(cell) for cell in table["model.channels"]] == [[8, 16], [4, 8], [8, 16], [4, 8], [4, 8]]
    assert list(table["best"].iloc[:3]) == [0.95, 0.9, 0.7] and table["best"].iloc[3:].isna().all()
    assert list(table["final"].iloc[:3]) == [0.93, 0.88, 0.6]
    assert [p.name for p in out.parent.iterdir()] == ["lr-hidden.csv"]  # no temp file left


def test_plot_goes_into_the_sweep_folder_with_a_panel_per_parameter(sweep):
    result = run_script("03_compare.py", "-e", "exp", "--sweep", "lr-hidden", timeout=60)
    assert result.returncode == 0, result.stderr
    png = sweep_dir("exp", "lr-hidden") / "lr-hidden_val_accuracy.png"
    assert f"plot: {png}" in result.stdout
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 2 * image.height  # three panels in one row

    fig = draw_sweep(sweep_frame(read_state("exp", "lr-hidden")), PARAMETER_NAMES, "val/accuracy", "title")
    lr, hidden, channels = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == PARAMETER_NAMES
    assert lr.get_xscale() == "log" and hidden.get_xscale() == "linear"  # 1e-4..0.1 vs 16..32
    assert [label.get_text() for label in channels.get_xticklabels()] == ["[4, 8]", "[8, 16]"]
    points = {c.get_label(): c.get_offsets().tolist() for c in channels.collections}
    assert points == {"pruned": [[1.0, 0.95]], "done": [[0.0, 0.9]], "interrupted": [[1.0, 0.7]]}
    assert len({c.get_paths()[0].vertices.tobytes() for c in lr.collections}) == 3  # a marker per state
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["done", "pruned", "interrupted"]


def test_min_mode_ranks_lowest_first_and_a_sweep_without_values_prints_no_plot():
    spec = _spec(mode="min", parameters={"optimizer.lr": [0.1, 0.2, 0.3]})
    _write_sweep([
        _trial(0, {"optimizer.lr": 0.1}, "done", best=0.4, final=0.5),
        _trial(1, {"optimizer.lr": 0.2}, "done", best=0.2, final=0.3),
        _trial(2, {"optimizer.lr": 0.3}, "done", best=0.2, final=0.2),
    ], spec)
    ranked = run_script("03_compare.py", "-e", "exp", "--sweep", "lr-hidden", "--no-plot", timeout=60)
    assert ranked.returncode == 0, ranked.stderr
    assert [row[:2] for row in _table(ranked.stdout)] == [["*", "lr-hidden-001"], ["*", "lr-hidden-002"],
                                                          ["lr-hidden-000", "0.1"]]  # a tie keeps trial order

    _write_sweep([_trial(0, {"optimizer.lr": 0.1}, "pending")], _spec(name="fresh", parameters={"optimizer.lr": [0.1]}))
    empty = run_script("03_compare.py", "-e", "exp", "--sweep", "fresh", timeout=60)
    assert empty.returncode == 0, empty.stderr
    assert "no plot: no trial has logged val/accuracy yet" in empty.stdout
    assert not list(sweep_dir("exp", "fresh").glob("*.png"))


@pytest.mark.slow
def test_a_trial_trained_by_02_train_is_read_from_the_engines_csv():
    run_dir = make_run("exp", "lr-hidden-000", "training.epochs=2", "logging.tensorboard=false",
                       "data.batch_size=128", "model.channels=[4, 8]", "model.hidden=16")
    trained = train("exp", "lr-hidden-000", timeout=120)
    assert trained.returncode == 0, trained.stderr
    _write_sweep([_trial(0, {"optimizer.lr": 0.001}, "done")], _spec(parameters={"optimizer.lr": [0.001]}))
    with (run_dir / "logs" / "metrics.csv").open(newline="") as handle:
        accuracy = [float(row["val/accuracy"]) for row in csv.DictReader(handle) if row["val/accuracy"]]
    assert len(accuracy) == 2  # one value per epoch

    result = run_script("03_compare.py", "-e", "exp", "--sweep", "lr-hidden", timeout=60)
    assert result.returncode == 0, result.stderr
    row = _table(result.stdout)[0]
    assert row[:4] == ["*", "lr-hidden-000", "0.001", "done"]
    assert [float(value) for value in row[6:]] == pytest.approx([max(accuracy), accuracy[-1]], rel=1e-5)
    assert math.isclose(float(row[6]), json.loads((run_dir / "logs" / "summary.json").read_text())["best_metric"],
                        rel_tol=1e-5)
    assert (sweep_dir("exp", "lr-hidden") / "lr-hidden_val_accuracy.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sweep", "nope"], "experiment exp has no sweep 'nope'; its sweeps: lr-hidden (start one with"),
        (["--sweep", "lr-hidden", "-r", "lr-hidden-000"], "--sweep does not combine with -r/--runs"),
        (["--sweep", "lr-hidden", "-m", "val/loss", "--mode", "max"], "does not combine with -m/--metrics, --mode"),
        (["--sweep", "lr-hidden", "--export", "{tmp}/missing/out.csv"], "folder {tmp}/missing does not exist"),
        (["--sweep", "lr-hidden", "--export", "{tmp}"], "--export {tmp} is a folder; give a file name"),
        (["--export", "{tmp}/out.csv"], "--export writes a sweep's table: add --sweep NAME"),
        (["--sweep", "../x"], "invalid sweep name '../x'"),
    ],
)
def test_bad_sweep_input_exits_2_with_one_line_and_writes_nothing(sweep, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    result = run_script("03_compare.py", "-e", "exp", *(arg.format(tmp=out) for arg in args), timeout=60)
    assert result.returncode == 2
    assert message.format(tmp=out) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not list(sweep_dir("exp", "lr-hidden").glob("*.png")) and not list(out.iterdir())


def test_unknown_experiment_names_the_existing_ones(sweep):
    result = run_script("03_compare.py", "-e", "nope", "--sweep", "lr-hidden", timeout=60)
    assert result.returncode == 2
    assert "experiment 'nope' does not exist" in result.stderr and "existing experiments: exp" in result.stderr


def test_help_shows_the_sweep_examples():
    result = run_script("03_compare.py", "--help", timeout=60)
    assert result.returncode == 0
    assert "--sweep lr-hidden --export lr-hidden.csv" in result.stdout
