"""Code that logs, run outside a run: `is_active()` and the do-nothing `NullLogger`."""

import inspect
import os
import threading

import numpy as np
import pytest

import utils.logging as ulog
from utils.logging import LOGGER, Logger, NullLogger, is_active


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def public_members(cls: type) -> dict[str, object]:
    return {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_")}


def test_null_logger_has_every_public_method_of_logger_with_the_same_signature():
    logger_api, null_api = public_members(Logger), public_members(NullLogger)
    assert null_api.keys() == logger_api.keys()
    for name, member in logger_api.items():
        if isinstance(member, property):
            assert isinstance(null_api[name], property), name
        else:
            assert inspect.signature(null_api[name]) == inspect.signature(member), name


def test_null_logger_accepts_every_call_and_writes_nothing(experiments_root, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    null = NullLogger()
    null.initialize_csv()
    null.initialize_tensorboard()
    null.initialize_wandb("template-tests")
    null.log({"loss": torch.tensor(0.5)}, step=3)
    null.log_image("img", np.zeros((2, 2)))
    null.log_figure("fig", plt.figure())
    null.log_histogram("hist", np.arange(3.0), step=1)
    null.log_text("text", "words")
    null.log_config({"lr": 0.1})
    null.log_architecture(torch.nn.Linear(2, 2))
    null.log_git_hash()
    null.info("words")
    null.warning("words")
    null.error("words")
    null.flush()
    null.finish()
    null.log({"loss": 1.0}, step=4)  # a NullLogger never closes
    assert (null.last_step, null.state_dict()) == (None, {"last_step": None, "wandb_run_id": None})
    assert not plt.get_fignums()  # log_figure closed the figure, as a Logger does
    assert not list(experiments_root.iterdir()) and not list(tmp_path.glob("wandb*"))
    assert not list(tmp_path.glob("**/*.png"))
    assert not [thread for thread in threading.enumerate() if thread.name == "utils.logging"]


def test_null_logger_get_path_needs_a_folder_and_checks_the_kind(tmp_path):
    assert NullLogger(path=tmp_path).get_path("plot") == tmp_path / "plots"
    with pytest.raises(RuntimeError, match=r"has no run folder; create it as NullLogger\(path="):
        NullLogger().get_path("plot")
    with pytest.raises(ValueError, match="choose from checkpoint, log, plot, visualization"):
        NullLogger().get_path("plots")


def test_is_active_tells_whether_logger_has_an_open_logger_to_forward_to():
    assert not is_active()
    outer = Logger("exp", "outer")
    inner = Logger("exp", "inner")
    assert is_active()
    inner.finish()
    assert is_active() and LOGGER.run_name == "outer"
    outer.finish()
    assert not is_active()


def test_in_a_forked_child_no_logger_is_active():
    Logger("exp", "forked")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child, like a DataLoader worker: LOGGER's calls would raise there
        os.write(write_end, b"active" if is_active() else b"inactive")
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"inactive"
    assert is_active()


def test_code_that_logs_runs_in_a_unit_test_with_the_pattern_the_docs_show():
    def train_step(value: float, step: int) -> float:
        log = LOGGER if is_active() else NullLogger()
        log.log({"train/loss": value}, step)
        log.info(f"step {step}")
        return value * 2

    assert train_step(0.5, 0) == 1.0  # no Logger, no run folder: nothing raises
    logger = Logger("exp", "with-run")
    logger.initialize_csv()
    train_step(0.25, 1)
    logger.finish()
    assert (logger.get_path("log") / "metrics.csv").read_text().splitlines() == ["step,train/loss", "1,0.25"]
