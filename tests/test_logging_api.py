"""The Logger's public API: LOGGER proxy, run binding, bad input, text log, errors, threads, rank."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import subprocess_env
from test_logging_tensorboard import read_events, scalar_steps

import utils.logging as ulog
from utils.log.queue import WriterError
from utils.logging import LOGGER, Logger
from utils.management import create_run, run_path
from utils.runs.run import Run


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def logger_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "utils.logging"]


def test_importing_the_module_imports_no_heavy_library():
    code = (
        "import sys, utils.logging\n"
        "heavy = [m for m in ('wandb', 'tensorboard', 'torch', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=subprocess_env(), timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_logger_proxy_before_any_logger_says_how_to_create_one():
    assert not ulog._active
    with pytest.raises(RuntimeError, match=r"Logger\(exp_name, run_name\)"):
        LOGGER.log({"loss": 1.0}, step=0)


def test_proxy_forwards_to_the_newest_open_logger_and_falls_back_after_finish():
    first = Logger("exp", "one")
    second = Logger("exp", "two")
    assert LOGGER.run_name == "two"
    second.finish()
    assert LOGGER.run_name == "one"
    first.finish()
    with pytest.raises(RuntimeError, match="no Logger is active"):
        LOGGER.flush()


def test_get_path_gives_each_folder_of_the_run_and_names_the_kinds_on_a_typo():
    logger = Logger("exp", "fresh")
    for kind, folder in [("log", "logs"), ("plot", "plots"), ("checkpoint", "checkpoints"),
                         ("visualization", "visualizations"), ("export", "exports")]:
        assert logger.get_path(kind) == run_path("exp", "fresh") / folder
        assert logger.get_path(kind).is_dir()
    with pytest.raises(ValueError, match="choose from checkpoint, log, plot, visualization, export"):
        logger.get_path("logs")


def test_an_existing_config_is_never_overwritten():
    create_run("exp", "mine", {"custom": 1})
    Logger("exp", "mine").finish()
    assert json.loads(Run.resolve("exp", "mine").config_file.read_text()) == {"custom": 1}


@pytest.mark.parametrize(
    ("data", "step", "error", "pattern"),
    [
        ({"loss": "high"}, 0, TypeError, r"'loss'.*not a number"),
        ({"loss": None}, 0, TypeError, r"'loss'.*not a number"),
        ({"loss": [1.0, 2.0]}, 0, TypeError, r"'loss'.*not a number"),
        ({"loss": np.ones(3)}, 0, TypeError, r"'loss'.*not a number"),
        ({"loss": 1j}, 0, TypeError, r"'loss'.*not a number"),
        ({"": 1.0}, 0, ValueError, "non-empty string"),
        ({3: 1.0}, 0, TypeError, "metric name 3 must be a non-empty string"),
        ({}, 0, ValueError, "empty dict"),
        ([("loss", 1.0)], 0, TypeError, "dict of metrics"),
        ({"loss": 1.0}, -1, ValueError, "step -1 is negative"),
        ({"loss": 1.0}, np.int64(-2), ValueError, "step -2 is negative"),
        ({"loss": 1.0}, 1.5, TypeError, "step must be an integer"),
        ({"loss": 1.0}, True, TypeError, "step must be an integer"),
        ({"loss": 1.0}, "3", TypeError, "step must be an integer"),
        ({"loss": 1.0}, 10**20, ValueError, r"step 100000000000000000000 is beyond 2\*\*63 - 1"),
        ({"loss": 1.0}, 2**63, ValueError, "largest step TensorBoard and W&B store"),
        ({"loss": 1.0, "step": 3}, 0, ValueError, "'step' is taken by the step column of metrics.csv"),
    ],
)
def test_bad_input_raises_naming_the_problem_and_writes_nothing(data, step, error, pattern):
    logger = Logger("exp", "bad")
    logger.initialize_csv()
    with pytest.raises(error, match=pattern):
        logger.log(data, step=step)
    logger.finish()
    assert not (logger.get_path("log") / "metrics.csv").read_text().strip().splitlines()[1:]


def test_a_tensor_with_several_elements_or_complex_is_rejected_naming_the_key():
    import torch

    logger = Logger("exp", "bad")
    with pytest.raises(TypeError, match=r"'acc'.*\(2,\)"):
        logger.log({"ok": 1.0, "acc": torch.ones(2)}, step=0)
    with pytest.raises(TypeError, match=r"'z'.*one-element real tensor"):
        logger.log({"z": torch.tensor(1j)}, step=0)
    assert logger.last_step is None


def test_a_meta_tensor_is_rejected_at_log_naming_the_key_and_valid_values_are_all_written():
    import torch

    logger = Logger("exp", "meta")
    logger.initialize_csv()
    logger.log({"ok": 1.0}, step=0)
    with pytest.raises(TypeError, match=r"'ghost': a tensor on the meta device holds no value"):
        logger.log({"also_ok": 2.0, "ghost": torch.zeros((), device="meta")}, step=0)
    logger.log({"also_ok": 3.0}, step=0)
    logger.log({"ok": 4.0}, step=1)
    logger.finish()  # no error: the refused call queued nothing
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert list(frame.columns) == ["step", "ok", "also_ok"]
    assert frame["ok"].tolist() == [1.0, 4.0] and frame.loc[0, "also_ok"] == 3.0


def test_a_step_beyond_int64_is_refused_for_media_and_resume_too():
    with pytest.raises(ValueError, match="beyond 2\\*\\*63 - 1"):
        Logger("exp", "big", resume_step=2**64)
    logger = Logger("exp", "big")
    with pytest.raises(ValueError, match="step of 'note' 100000000000000000000 is beyond"):
        logger.log_text("note", "hello", step=10**20)


def test_a_decreasing_step_is_rejected_and_the_row_kept_intact():
    logger = Logger("exp", "bad")
    logger.initialize_csv()
    logger.log({"loss": 1.0}, step=5)
    with pytest.raises(ValueError, match="step 4 is smaller than the last logged step 5"):
        logger.log({"loss": 2.0}, step=4)
    logger.log({"acc": 0.5}, step=5)  # the same step again is fine
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert frame.to_dict("records") == [{"step": 5, "loss": 1.0, "acc": 0.5}]


def test_log_from_several_threads_loses_nothing():
    logger = Logger("exp", "threads")
    logger.initialize_csv()

    def work(index: int) -> None:
        for step in range(200):
            logger.log({f"thread{index}": float(step)}, step=0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logger.finish()
    frame = pd.read_csv(logger.get_path("log") / "metrics.csv")
    assert frame["step"].tolist() == [0]
    assert sorted(frame.columns[1:]) == [f"thread{i}" for i in range(4)]
    assert all(frame.loc[0, f"thread{i}"] == 199.0 for i in range(4))


def test_a_failing_writer_is_raised_on_the_next_call_once_and_others_keep_working():
    logger = Logger("exp", "fail")
    (logger.get_path("log") / "broken.csv").mkdir()  # a folder where the CSV file should go
    logger.initialize_csv("broken.csv")
    logger.initialize_tensorboard()
    logger.log({"loss": 1.0}, step=0)
    with pytest.raises(WriterError, match="the csv writer") as caught:
        logger.flush()
    assert isinstance(caught.value.__cause__, OSError)
    logger.log({"loss": 2.0}, step=1)
    logger.finish()
    assert scalar_steps(read_events(logger.get_path("log")), "loss") == [(0, 1.0), (1, 2.0)]


def test_log_txt_has_timestamped_levelled_lines_also_on_stderr_and_is_appended(capsys):
    first = Logger("exp", "text")
    first.info("first message")
    first.warning("careful")
    first.finish()
    second = Logger("exp", "text")
    second.error("second message")
    second.finish()
    lines = (second.get_path("log") / "log.txt").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert len(lines) == 5  # two "logging run" lines and the three messages
    assert pd.Series(lines).str.match(stamp + " (INFO|WARNING|ERROR) ").all()
    assert [line.split(" ", 2)[2] for line in lines[1:3] + lines[4:]] == [
        "INFO first message", "WARNING careful", "ERROR second message"]
    assert "ERROR second message" in capsys.readouterr().err


def test_log_config_goes_to_log_txt_and_only_a_pointer_to_the_console(capsys):
    logger = Logger("exp", "cfg")
    logger.log_config({"optimizer": {"lr": 0.001}})
    logger.finish()
    text = (logger.get_path("log") / "log.txt").read_text()
    assert json.dumps({"optimizer": {"lr": 0.001}}, indent=2) in text
    console = capsys.readouterr().err
    assert "config logged to" in console and "log.txt" in console
    assert '"lr"' not in console


def test_log_architecture_lists_parameters_per_module_and_total():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    logger = Logger("exp", "arch")
    logger.log_architecture(model)
    text = (logger.get_path("log") / "architecture.txt").read_text()
    assert "total parameters: 26" in text and "trainable parameters: 18" in text
    assert [line.split()[:3] for line in text.splitlines() if line.startswith(("0 ", "2 "))] == [
        ["0", "Linear", "16"], ["2", "Linear", "10"]]


def test_log_git_hash_records_commit_flag_and_diff():
    from utils.git_info import git_commit

    logger = Logger("exp", "git")
    logger.log_git_hash()
    log_dir = logger.get_path("log")
    assert (log_dir / "git.txt").read_text().splitlines()[0] == f"commit: {git_commit()}"
    assert (log_dir / "git_diff.patch").is_file()


def test_state_dict_and_last_step_follow_logging_and_resume():
    logger = Logger("exp", "state")
    assert logger.state_dict() == {"last_step": None, "wandb_run_id": None}
    logger.log({"loss": 1.0}, step=41)
    assert logger.last_step == 41 and logger.state_dict()["last_step"] == 41
    logger.finish()
    resumed = Logger("exp", "state", resume_step=42)
    assert resumed.last_step == 41
    with pytest.raises(ValueError, match="step 40 is smaller than the last logged step 41"):
        resumed.log({"loss": 1.0}, step=40)


def test_finish_is_idempotent_and_a_finished_logger_refuses_to_log():
    logger = Logger("exp", "done")
    logger.finish()
    logger.finish()
    assert not logger_threads()
    with pytest.raises(RuntimeError, match="is finished"):
        logger.log({"loss": 1.0}, step=0)


def test_a_forked_child_gets_a_clear_error_instead_of_a_queue_without_a_thread():
    logger = Logger("exp", "forked")
    logger.initialize_csv()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, like a forked DataLoader worker
        message = b"logged"
        try:
            LOGGER.log({"loss": 1.0}, step=0)
        except RuntimeError as exc:
            message = str(exc).encode()
        os.write(write_end, message)
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0
    assert "forked child" in message and "DataLoader worker" in message
    LOGGER.log({"loss": 2.0}, step=1)  # the parent's logger is unaffected
    logger.finish()
    assert pd.read_csv(logger.get_path("log") / "metrics.csv")["loss"].tolist() == [2.0]


def test_on_rank_one_the_logger_writes_nothing_and_starts_no_thread(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    logger = Logger("exp", "ranked")
    logger.initialize_csv()
    logger.initialize_tensorboard()
    logger.initialize_wandb("project")
    LOGGER.log({"loss": "not even validated"}, step=-5)
    LOGGER.info("quiet")
    LOGGER.flush()
    assert logger.get_path("log") == run_path("exp", "ranked") / "logs"
    assert not run_path("exp", "ranked").exists()
    assert not logger_threads()
    logger.finish()
