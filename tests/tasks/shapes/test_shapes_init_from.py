"""`training.init_from` on the shapes task's UNet: a run's best.pt loads into the same model, and a
UNet of other widths is refused naming the keys (no training: the checkpoint is saved here)."""

import copy

import pytest
import torch

from training.init_from import InitConfig, check_init_from, init_model
from training.run_config import parse_run_config
from training.task import TaskContext
from utils.checkpointing.io import build_checkpoint, save_checkpoint
from utils.configs import load_config_template
from utils.errors import ConfigValueError
from utils.management import create_run
from utils.runs.provenance import SessionRecord
from utils.runs.run import Run


def _config(**model) -> dict:
    config = copy.deepcopy(load_config_template("shapes"))
    config["model"].update(model)
    config["training"]["init_from"] = "seg/source"
    return config


def test_a_shapes_runs_best_weights_load_into_the_same_unet_and_other_widths_are_refused():
    source = copy.deepcopy(load_config_template("shapes"))
    create_run("seg", "source", source)
    parsed = parse_run_config(source)
    trained = parsed.task(TaskContext(parsed.parsed, 0, torch.device("cpu"))).build_model()
    save_checkpoint(Run.require("seg", "source").best_checkpoint, build_checkpoint(model=trained, epoch=1, global_step=9))

    config = parse_run_config(_config())
    check_init_from(config, "config")
    model = config.task(TaskContext(config.parsed, 1, torch.device("cpu"))).build_model()  # another seed
    init_model(model, config[InitConfig], resumed=False, record=SessionRecord(Run.resolve("seg", "x"), "train", "s", None))
    assert all(torch.equal(value, trained.state_dict()[key]) for key, value in model.state_dict().items())

    with pytest.raises(ConfigValueError, match="its weights do not fit the model: .*keys of the wrong shape"):
        check_init_from(parse_run_config(_config(channels=[8, 16, 32])), "config")
