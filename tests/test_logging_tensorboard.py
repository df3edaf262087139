"""TensorBoard events written through the Logger, read back with TensorBoard's EventAccumulator."""

from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

import utils.logging as ulog
from utils.logging import Logger


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def read_events(log_dir: Path) -> EventAccumulator:
    keep_all = {"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}
    accumulator = EventAccumulator(str(log_dir), size_guidance=keep_all)
    accumulator.Reload()
    return accumulator


def scalar_steps(accumulator: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def tb_logger(run: str = "tb") -> Logger:
    logger = Logger("exp", run)
    logger.initialize_tensorboard()
    return logger


def test_scalars_of_every_step_are_readable_by_tensorboard():
    logger = tb_logger()
    for step in range(20):
        logger.log({"train/loss": 1.0 / (step + 1), "lr": 0.5}, step=step)
    logger.log({"val/acc": 0.75}, step=19)
    logger.finish()
    events = read_events(logger.get_path("log"))
    assert set(events.Tags()["scalars"]) == {"train/loss", "lr", "val/acc"}
    assert scalar_steps(events, "train/loss") == [(s, pytest.approx(1.0 / (s + 1))) for s in range(20)]
    assert scalar_steps(events, "val/acc") == [(19, 0.75)]


def test_images_figures_histograms_and_text_are_recorded():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logger = tb_logger()
    logger.log_image("samples", np.zeros((8, 6, 3), dtype=np.uint8), step=1)
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    logger.log_figure("curves", fig, step=2)
    logger.log_histogram("weights", np.arange(100, dtype=np.float32), step=3)
    logger.log_text("notes", "hello board", step=4)
    logger.finish()
    assert not plt.get_fignums()  # the figure was closed
    events = read_events(logger.get_path("log"))
    image = events.Images("samples")[0]
    assert (image.step, image.width, image.height) == (1, 6, 8)
    figure = events.Images("curves")[0]
    assert (figure.step, figure.width, figure.height) == (2, 100, 50)
    histogram = events.Histograms("weights")[0]
    assert histogram.step == 3
    assert (histogram.histogram_value.num, histogram.histogram_value.max) == (100, 99)
    text = events.Tensors("notes/text_summary")[0]
    assert text.step == 4 and text.tensor_proto.string_val == [b"hello board"]


def test_hparams_with_final_metrics_are_written_at_finish():
    logger = tb_logger()
    logger.log_config({"optimizer": {"lr": 0.01, "name": "adamw"}, "model": {"channels": [32, 64]}})
    logger.log({"val/acc": 0.5}, step=0)
    logger.log({"val/acc": 0.9}, step=1)
    log_dir = logger.get_path("log")
    logger.finish()
    content = read_events(log_dir).PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == 0.01
    assert hparams["optimizer.name"].string_value == "adamw"
    assert hparams["model.channels"].string_value == "[32, 64]"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc"]


def test_tensorboard_over_the_experiments_root_finds_each_run_in_its_log_folder(experiments_root):
    for run in ("a", "b"):
        logger = tb_logger(run)
        logger.log({"x": 1.0}, step=0)
        logger.finish()
    multiplexer = EventMultiplexer().AddRunsFromDirectory(str(experiments_root))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == ["exp/a/logs", "exp/b/logs"]
    assert [event.value for event in multiplexer.Scalars("exp/b/logs", "x")] == [1.0]
