"""The queue's byte budget for media: a fast producer waits, memory stays bounded, nothing is lost."""

import threading

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import utils.logging as ulog
from utils.log.queue import MEDIA_QUEUE_BYTES
from utils.logging import Logger

MIB = 2**20
WARNING = "media logging is slowing training"


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def tb_logger(budget: int) -> Logger:
    logger = Logger("exp", "media", media_queue_bytes=budget)
    logger.initialize_tensorboard()
    return logger


def image_of(size: int, step: int) -> np.ndarray:
    image = np.zeros((size // 1024, 1024), dtype=np.uint8)  # (H, W) gray, `size` bytes
    image[step % image.shape[0]] = 255
    return image


def image_steps(logger: Logger, tag: str) -> list[int]:
    accumulator = EventAccumulator(str(logger.get_path("log")), size_guidance={"images": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Images(tag)]


def warnings_in_log_txt(logger: Logger) -> list[str]:
    text = (logger.get_path("log") / "log.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if WARNING in line]


def run_in_thread(action, *args) -> tuple[threading.Thread, list]:
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(action(*args))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_the_default_budget_is_256_mib():
    assert MEDIA_QUEUE_BYTES == 256 * MIB
    assert Logger("exp", "default")._worker._max_bytes == MEDIA_QUEUE_BYTES


def test_a_fast_producer_is_held_to_the_budget_plus_one_image_and_every_image_reaches_tensorboard():
    size, budget = MIB // 8, MIB // 2  # 1 MB images under a few MB, scaled down 8x for speed
    logger = tb_logger(budget)
    for step in range(200):
        logger.log_image("seg", image_of(size, step), step)
    worker = logger._worker
    logger.flush()
    assert 0 < worker.bytes_high_water <= budget + size
    logger.finish()
    assert image_steps(logger, "seg") == list(range(200))
    assert len(list(logger.get_path("visualization").iterdir())) == 200


def test_the_slowing_warning_is_written_once_per_run_to_log_txt_and_names_the_option():
    logger = tb_logger(2 * MIB)
    for step in range(40):  # each image waits for the one before it: many waits, one warning
        logger.log_image("seg", image_of(MIB, step), step)
    logger.finish()
    lines = warnings_in_log_txt(logger)
    assert len(lines) == 1
    assert "WARNING" in lines[0] and "'seg'" in lines[0] and "media_queue_bytes" in lines[0]


def test_scalars_do_not_count_against_the_budget_and_never_warn():
    logger = tb_logger(1024)
    for step in range(500):
        logger.log({"loss": 1.0 / (step + 1)}, step)
    assert logger._worker.bytes_high_water == 0
    logger.finish()
    assert warnings_in_log_txt(logger) == []


def test_histograms_and_text_count_against_the_budget_by_their_size_in_memory():
    logger = Logger("exp", "media", media_queue_bytes=MIB)
    values = np.ones(MIB // 8)  # float64: 1 MiB
    logger.log_histogram("weights", values, 0)
    logger.log_text("note", "x" * MIB, 0)
    assert logger._worker.bytes_high_water >= MIB  # each alone reaches the budget
    logger.flush()
    again, outcome = run_in_thread(logger.log_histogram, "weights", values, 1)  # waits forever if never released
    again.join(timeout=60)
    assert outcome == [None]


def test_an_image_larger_than_the_whole_budget_passes_once_the_queue_holds_no_media():
    logger = tb_logger(MIB)
    for step in range(3):
        logger.log_image("big", image_of(3 * MIB, step), step)
    assert logger._worker.bytes_high_water == 3 * MIB  # alone in the queue, never two at once
    logger.finish()
    assert image_steps(logger, "big") == [0, 1, 2]


def test_flush_from_another_thread_while_the_producer_waits_for_room_completes():
    logger = tb_logger(2 * MIB)

    def produce() -> None:
        for step in range(30):
            logger.log_image("seg", image_of(MIB, step), step)

    producer, outcome = run_in_thread(produce)
    while producer.is_alive():
        flusher, flushed = run_in_thread(logger.flush)
        flusher.join(timeout=60)
        assert not flusher.is_alive() and flushed == [None]
    assert outcome == [None]
    logger.finish()
    assert image_steps(logger, "seg") == list(range(30))


def test_finish_while_a_producer_waits_for_room_completes_and_the_producer_gets_the_finished_error():
    logger = tb_logger(2 * MIB)

    def produce_until_refused() -> int:
        step = 0
        while True:
            logger.log_image("seg", image_of(MIB, step), step)
            step += 1

    producer, outcome = run_in_thread(produce_until_refused)
    while logger._worker.seconds_waited == 0 and producer.is_alive():
        threading.Event().wait(0.01)  # until the producer has had to wait at least once
    finisher, finished = run_in_thread(logger.finish)
    finisher.join(timeout=60)
    producer.join(timeout=60)
    assert not finisher.is_alive() and finished == [None]
    assert not producer.is_alive()
    assert isinstance(outcome[0], RuntimeError) and "finish()" in str(outcome[0])


@pytest.mark.parametrize("budget, error", [(0, ValueError), (-5, ValueError), (1.5, TypeError), (True, TypeError)])
def test_a_budget_that_is_not_a_positive_integer_is_refused_naming_the_option(budget, error):
    with pytest.raises(error, match="media_queue_bytes"):
        Logger("exp", "bad", media_queue_bytes=budget)
