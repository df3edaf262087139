"""After finish(): every call that would log or write raises the same error; nothing is dropped."""

import inspect

import numpy as np
import pytest

import utils.logging as ulog
from utils.logging import LOGGER, Logger

# One call for each public method that logs or writes; reading calls and finish() are below.
WRITING_CALLS = {
    "start_writers": lambda logger: logger.start_writers({"csv": True, "wandb": False}),
    "initialize_csv": lambda logger: logger.initialize_csv(),
    "initialize_tensorboard": lambda logger: logger.initialize_tensorboard(),
    "initialize_wandb": lambda logger: logger.initialize_wandb("template-tests"),
    "log": lambda logger: logger.log({"loss": 1.0}, step=5),
    "log_image": lambda logger: logger.log_image("img", np.zeros((2, 2)), step=5),
    "log_figure": lambda logger: logger.log_figure("fig", object(), step=5),
    "log_histogram": lambda logger: logger.log_histogram("hist", np.arange(3.0), step=5),
    "log_text": lambda logger: logger.log_text("text", "late words", step=5),
    "log_config": lambda logger: logger.log_config({"lr": 0.1}),
    "log_architecture": lambda logger: logger.log_architecture(object()),
    "log_git_hash": lambda logger: logger.log_git_hash(),
    "info": lambda logger: logger.info("late words"),
    "warning": lambda logger: logger.warning("late words"),
    "error": lambda logger: logger.error("late words"),
    "flush": lambda logger: logger.flush(),
}
READING = {"finish", "get_path", "last_step", "state_dict"}
FINISHED = r"the Logger of exp/done is finished: finish\(\) closed it"


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def test_every_public_method_is_either_a_writing_call_or_a_reading_one():
    public = {name for name, _ in inspect.getmembers(Logger) if not name.startswith("_")}
    assert public == WRITING_CALLS.keys() | READING


@pytest.mark.parametrize("method", sorted(WRITING_CALLS))
def test_every_writing_call_on_a_finished_logger_raises_the_same_error_naming_finish(method):
    logger = Logger("exp", "done")
    logger.log({"loss": 0.5}, step=4)
    logger.finish()
    log_dir = logger.get_path("log")
    before = sorted(path.name for path in log_dir.iterdir())
    with pytest.raises(RuntimeError, match=FINISHED):
        WRITING_CALLS[method](logger)
    assert sorted(path.name for path in log_dir.iterdir()) == before  # no file started
    assert "late words" not in (log_dir / "log.txt").read_text()
    assert not list(logger.get_path("visualization").iterdir())


@pytest.mark.parametrize("method", sorted(WRITING_CALLS))
def test_on_another_rank_calls_are_no_ops_until_finish_and_then_raise_the_same(method, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    logger = Logger("exp", "done")
    WRITING_CALLS[method](logger)  # a no-op: rank 1 writes nothing
    logger.finish()
    with pytest.raises(RuntimeError, match=FINISHED):
        WRITING_CALLS[method](logger)


def test_a_finished_logger_still_answers_reading_calls_and_finish_again():
    logger = Logger("exp", "done")
    logger.log({"loss": 0.5}, step=4)
    logger.finish()
    logger.finish()
    assert logger.last_step == 4
    assert logger.state_dict() == {"last_step": 4, "wandb_run_id": None}
    assert logger.get_path("log").is_dir()


def test_logger_proxy_without_an_open_logger_raises_for_text_lines_too():
    Logger("exp", "done").finish()
    for call in (lambda: LOGGER.info("late words"), lambda: LOGGER.log({"loss": 1.0}, step=0)):
        with pytest.raises(RuntimeError, match="no Logger is active; create one first"):
            call()
