"""log_image / log_figure: PNG files under visualizations/, shape checks on the caller's thread."""

import re

import numpy as np
import pytest
from PIL import Image

import utils.logging as ulog
from utils.logging import Logger


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_chw_float_tensor_is_saved_as_png_with_a_sanitised_name():
    import torch

    logger = Logger("exp", "img")
    image = torch.zeros(3, 4, 5)  # (C, H, W)
    image[0] = 1.0  # pure red
    logger.log_image("val/sample 1", image, step=12)
    image.fill_(0.5)  # changing the caller's tensor afterwards must not change the PNG
    logger.finish()
    files = list(logger.get_path("visualization").iterdir())
    assert [f.name for f in files] == ["val_sample_1_step00000012.png"]
    pixels = read_png(files[0])
    assert pixels.shape == (4, 5, 3)
    assert (pixels == [255, 0, 0]).all()


def test_a_batch_becomes_one_grid_image():
    logger = Logger("exp", "img")
    batch = np.full((4, 6, 6, 3), 200, dtype=np.uint8)  # (N, H, W, C)
    logger.log_image("batch", batch, step=0)
    logger.finish()
    pixels = read_png(logger.get_path("visualization") / "batch_step00000000.png")
    assert pixels.shape == (2 + 6 + 2, 4 * (6 + 2) + 2, 3)  # one row of four tiles, padding 2
    assert (pixels[2:8, 2:8] == 200).all()


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5, 6), (4, 5, 6), (2, 7, 5, 5), (0, 3, 4, 4)])
def test_an_unsupported_shape_raises_naming_image_and_shape_and_writes_nothing(shape):
    logger = Logger("exp", "img")
    with pytest.raises(ValueError, match=rf"image 'bad' has unsupported shape {re.escape(str(shape))}"):
        logger.log_image("bad", np.zeros(shape, dtype=np.float32), step=0)
    logger.finish()
    assert not list(logger.get_path("visualization").iterdir())


def test_a_non_numeric_array_is_rejected_on_the_caller_thread():
    logger = Logger("exp", "img")
    with pytest.raises(ValueError, match="image 'text' has dtype <U1"):
        logger.log_image("text", np.array([["a", "b"], ["c", "d"]]), step=0)


def test_a_conversion_failure_in_the_background_is_raised_at_the_next_call():
    logger = Logger("exp", "img")
    logger.log_image("norm", np.zeros((3, 4, 4), dtype=np.float32), step=0, mean=[0.5, 0.5])
    with pytest.raises(ulog.WriterError, match="converting 'norm': ValueError: mean has 2 values"):
        logger.flush()
    logger.log_image("fine", np.zeros((4, 4), dtype=np.float32), step=1)
    logger.finish()
    assert [f.name for f in logger.get_path("visualization").iterdir()] == ["fine_step00000001.png"]
