"""The shapes task after training: evaluating best.pt gives the logged test values exactly, its drawing
lands in visualizations/eval/, and load_trained's predict returns the masks the model made."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from data.shapes_generator import NUM_CLASSES
from training.checkpoint_evaluation import evaluate_checkpoint
from training.inference import load_trained, read_run_config
from training.run_config import parse_run_config
from training.session import run_session
from utils.configs import apply_overrides, load_config_template
from utils.management import create_run
from utils.runs.run import Run

TINY = [
    "data.image_size=16", "data.train_samples=48", "data.val_samples=16", "data.test_samples=24",
    "data.max_shapes=2", "data.batch_size=16", "model.channels=[8, 16]", "training.epochs=1",
    "training.draw_every=null", "logging.tensorboard=false", "logging.wandb=false",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shapes/tiny trained for one epoch in this process; returns the experiments root."""
    root = tmp_path_factory.mktemp("shapes-evaluate") / "experiments"
    root.mkdir()
    config = apply_overrides(load_config_template("shapes"), TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPERIMENTS_ROOT", str(root))
        create_run("shapes", "tiny", config)
        result = run_session(Run.require("shapes", "tiny"), parse_run_config(config), torch.device("cpu"), resume=False)
        assert result.exit_code == 0
    return root


@pytest.fixture
def run(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("EXPERIMENTS_ROOT", str(trained))
    return Run.require("shapes", "tiny")


def test_evaluating_best_on_test_gives_the_logged_values_and_draws_into_eval(run):
    logged = pd.read_csv(run.metrics_csv).dropna(subset=["test/miou"]).iloc[-1]
    result = evaluate_checkpoint(run, read_run_config(run), "best", "test", torch.device("cpu"))
    assert result.record["metrics"] == {f"test/{name}": logged[f"test/{name}"] for name in ("loss", "miou", "accuracy")}
    assert result.drawings == [run.visualizations / "eval" / "best-test" / "segmentation.png"]
    assert result.drawings[0].read_bytes().startswith(b"\x89PNG")


def test_predict_returns_the_masks_the_model_makes(run):
    loaded = load_trained("shapes", "tiny")
    images = loaded.task.build_datasets().test.tensors[0]  # (24, 3, 16, 16) in [0, 1]
    masks = loaded.predict(images)
    assert masks.shape == (24, 16, 16) and masks.dtype == torch.int64
    assert 0 <= masks.min() and masks.max() < NUM_CLASSES
    with torch.no_grad():
        assert torch.equal(masks, loaded.model(images).argmax(dim=1))
