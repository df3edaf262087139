"""Media without a step (the original template's `log_image(name, image)`) and what log_image takes."""

import numpy as np
import pytest
from PIL import Image
from test_logging_images import read_png
from test_logging_tensorboard import read_events

import utils.logging as ulog
from utils.logging import Logger


@pytest.fixture(autouse=True)
def finish_loggers():
    yield
    for logger in list(ulog._active):
        logger.finish()


def pngs(logger: Logger) -> list[str]:
    return sorted(path.name for path in logger.get_path("visualization").iterdir())


def test_media_without_a_step_are_filed_at_the_last_step_logged_or_0_before_any():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logger = Logger("exp", "media")
    logger.initialize_tensorboard()
    logger.log_image("first", np.zeros((4, 4), dtype=np.float32))  # nothing logged yet: step 0
    logger.log({"loss": 0.5}, step=7)
    logger.log_image("samples", np.zeros((4, 4, 3), dtype=np.uint8))
    logger.log_figure("curves", plt.subplots(figsize=(1, 1), dpi=20)[0])
    logger.log_histogram("weights", np.arange(10.0))
    logger.log_text("notes", "hello")
    logger.log_image("explicit", np.zeros((4, 4), dtype=np.float32), step=3)  # a step still wins
    logger.finish()
    assert pngs(logger) == [
        "curves_step00000007.png", "explicit_step00000003.png", "first_step00000000.png",
        "samples_step00000007.png"]
    events = read_events(logger.get_path("log"))
    assert [event.step for event in events.Histograms("weights")] == [7]
    assert [event.step for event in events.Tensors("notes/text_summary")] == [7]


def test_after_a_resume_media_without_a_step_go_to_the_last_kept_step():
    Logger("exp", "resumed").finish()
    logger = Logger("exp", "resumed", resume_step=20)
    logger.log_image("samples", np.zeros((4, 4), dtype=np.float32))
    logger.finish()
    assert pngs(logger) == ["samples_step00000019.png"]


@pytest.mark.parametrize("value", ["text", None, 3.5, [["a", "b"]]])
def test_log_image_of_a_value_that_is_no_image_says_which_types_it_takes(value):
    logger = Logger("exp", "media")
    with pytest.raises(TypeError) as caught:
        logger.log_image("x", value, step=0)
    message = str(caught.value)
    assert f"image 'x' is a {type(value).__name__}: expected a NumPy array or torch tensor" in message
    assert "(H, W), (C, H, W), (H, W, C)" in message and "PIL image" in message
    assert "log_figure" in message and "unsupported shape ()" not in message
    logger.finish()
    assert pngs(logger) == []


def test_log_image_of_a_figure_points_to_log_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    logger = Logger("exp", "media")
    with pytest.raises(TypeError, match=r"matplotlib figure: log it with log_figure\('x', figure\)"):
        logger.log_image("x", figure, step=0)
    plt.close(figure)


def test_the_types_the_message_names_are_taken_pil_images_and_nested_lists_too():
    logger = Logger("exp", "media")
    logger.log_image("pil", Image.new("RGB", (5, 3), (255, 0, 0)), step=1)  # (W, H) = (5, 3)
    logger.log_image("gray", Image.new("L", (2, 2), 128), step=1)
    logger.log_image("list", [[0.0, 1.0], [1.0, 0.0]], step=1)
    logger.finish()
    folder = logger.get_path("visualization")
    red = read_png(folder / "pil_step00000001.png")
    assert red.shape == (3, 5, 3) and (red == [255, 0, 0]).all()
    assert (read_png(folder / "gray_step00000001.png") == 128).all()
    assert read_png(folder / "list_step00000001.png")[:, :, 0].tolist() == [[0, 255], [255, 0]]
