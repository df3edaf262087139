"""Figures in visualization.visualizations: what they draw, read back from the figure and pixels."""

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from utils.log.images import figure_to_array
from visualization.visualizations import (
    RIGHT_COLOR,
    WRONG_COLOR,
    class_colors,
    confusion_matrix,
    overlay_mask,
    plot_confusion_matrix,
    plot_prediction_grid,
    plot_segmentation,
)

KNOWN_MATRIX = np.array([[50, 0, 0], [3, 40, 7], [0, 10, 0]])  # the last class is never predicted right


def _render(fig) -> tuple[np.ndarray, FigureCanvasAgg]:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3], canvas


def _pixel_at(fig, pixels: np.ndarray, ax, x: float, y: float) -> np.ndarray:
    """The rendered colour at data coordinates (x, y) of `ax`."""
    px, py = ax.transData.transform((x, y))
    return pixels[int(round(pixels.shape[0] - py)), int(round(px))].astype(int)


def test_confusion_matrix_counts_match_sklearn_and_batches_add_up():
    rng = np.random.default_rng(0)
    targets, predictions = torch.from_numpy(rng.integers(0, 5, 200)), torch.from_numpy(rng.integers(0, 5, 200))
    expected = sklearn_confusion_matrix(targets.numpy(), predictions.numpy(), labels=range(5))
    assert np.array_equal(confusion_matrix(targets, predictions, 5).numpy(), expected)
    halves = [confusion_matrix(targets[i : i + 100], predictions[i : i + 100], 5) for i in (0, 100)]
    assert np.array_equal((halves[0] + halves[1]).numpy(), expected)  # how the engine sums a split


def test_confusion_matrix_figure_draws_the_known_matrix():
    fig = plot_confusion_matrix(KNOWN_MATRIX, ["cat", "dog", "bird"])
    ax = fig.axes[0]
    assert np.array_equal(ax.images[0].get_array(), KNOWN_MATRIX)
    assert [t.get_text() for t in ax.texts] == [str(v) for v in KNOWN_MATRIX.flatten()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert "n=110" in ax.get_title()
    pixels, _ = _render(fig)
    # beside each cell's number: the 50-count cell is dark blue, a 0-count cell almost white
    dark = _pixel_at(fig, pixels, ax, 0.35, 0.35)
    light = _pixel_at(fig, pixels, ax, 2.35, 0.35)
    assert dark.sum() < 200 and dark[2] > dark[0]
    assert light.min() > 230


def test_confusion_matrix_normalised_rows_and_empty_rows():
    matrix = np.array([[2, 2], [0, 0]])
    fig = plot_confusion_matrix(matrix, normalize=True)
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), [[0.5, 0.5], [0.0, 0.0]])
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.50", "0.00", "0.00"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    assert "row-normalised" in ax.get_title()


def test_confusion_matrix_many_classes_skips_cell_numbers():
    fig = plot_confusion_matrix(np.eye(40, dtype=int))
    assert len(fig.axes[0].texts) == 0
    assert figure_to_array(fig).shape[2] == 3


def test_confusion_matrix_rejects_non_square():
    with pytest.raises(ValueError, match=r"must be square \(K, K\), got shape \(2, 3\)"):
        plot_confusion_matrix(np.zeros((2, 3)))


def test_prediction_grid_marks_right_and_wrong():
    images = torch.rand(10, 1, 8, 8)
    labels = torch.arange(10) % 3
    predictions = labels.clone()
    predictions[[1, 4]] = (predictions[[1, 4]] + 1) % 3
    fig = plot_prediction_grid(images, labels, predictions, ["a", "b", "c"], ncols=4)
    (ax,) = fig.axes
    titles = [text.get_text() for text in ax.texts]
    assert titles[1] == "c / b" and titles[0] == "a / a"  # prediction / truth with class names
    colors = [to_hex(text.get_color()) for text in ax.texts]
    assert colors.count(WRONG_COLOR) == 2 and colors.count(RIGHT_COLOR) == 8
    assert colors[1] == colors[4] == WRONG_COLOR
    canvas = ax.images[0].get_array()  # (3 rows x cell_h, 4 cols x cell_w, 3)
    cell_h, cell_w = canvas.shape[0] // 3, canvas.shape[1] // 4
    frame_pixel = lambda i: to_hex(canvas[(i // 4) * cell_h + cell_h - 1, (i % 4) * cell_w + 1] / 255)
    assert frame_pixel(1) == WRONG_COLOR and frame_pixel(0) == RIGHT_COLOR
    assert to_hex(canvas[-1, -2] / 255) == "#ffffff"  # the two empty slots stay blank
    pixels, _ = _render(fig)
    red = np.all(np.abs(pixels.astype(int) - [0xD7, 0x19, 0x1C]) < 8, axis=-1)
    assert red.any(), "the wrong predictions' frames are drawn"
    assert "8 of 10 right" in fig.get_suptitle()
    assert figure_to_array(fig).ndim == 3


def test_prediction_grid_without_predictions_shows_labels():
    fig = plot_prediction_grid(np.random.rand(3, 4, 4, 3), [0, 1, 2], class_names=["x", "y", "z"])
    assert [text.get_text() for text in fig.axes[0].texts] == ["x", "y", "z"]
    assert fig.get_suptitle() == ""


def test_prediction_grid_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="got 3 images but 2 labels"):
        plot_prediction_grid(np.zeros((3, 1, 4, 4)), [0, 1], [0, 1, 1])


def test_overlay_mask_blends_colours_and_leaves_ignored_pixels():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1], [255, -1]])
    colors = np.array([[255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    out = overlay_mask(image, mask, colors, alpha=0.5)
    assert out[0, 0].tolist() == [178, 50, 50]  # 0.5 * 100 + 0.5 * 255 = 177.5 -> 178
    assert out[0, 1].tolist() == [50, 50, 178]
    assert out[1, 0].tolist() == [100, 100, 100] and out[1, 1].tolist() == [100, 100, 100]


@pytest.mark.parametrize("count", [3, 15, 60])
def test_class_colors_are_distinct_for_any_number_of_classes(count):
    colors = class_colors(count)
    assert colors.shape == (count, 3) and colors.dtype == np.uint8
    assert len({tuple(c) for c in colors}) == count


def test_segmentation_rows_overlay_the_masks_and_the_legend_lists_present_classes_below():
    images = torch.rand(2, 3, 16, 16)
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, 8:, :] = 3
    prediction = torch.zeros(2, 16, 16, dtype=torch.long)
    prediction[:, :, 8:] = 2
    names = ["background", "road", "car", "person"]
    fig = plot_segmentation(images, target, prediction, names, value_range=(0.0, 1.0))
    (ax,) = fig.axes
    assert [label.get_text() for label in ax.get_yticklabels()] == ["image", "truth", "prediction"]
    grid = ax.images[0].get_array()
    assert grid.shape[:2] == (3 * (16 + 2) + 2, 2 * (16 + 2) + 2)  # three rows of two 16x16 tiles
    picture = np.asarray(grid[2:18, 2:18])
    expected = overlay_mask(picture, prediction[0].numpy(), class_colors(4))
    assert np.array_equal(grid[2 + 2 * 18 : 18 + 2 * 18, 2:18], expected)  # first sample's prediction row
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["background", "car", "person"]
    _, canvas = _render(fig)
    renderer = canvas.get_renderer()
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))  # never covers


def test_segmentation_leaves_the_background_class_bare_and_out_of_the_legend():
    images = torch.rand(1, 3, 8, 8)
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :4] = 1
    fig = plot_segmentation(images, masks, masks, ["background", "circle"], background=0, value_range=(0.0, 1.0))
    grid = fig.axes[0].images[0].get_array()
    picture, truth = np.asarray(grid[2:10, 2:10]), np.asarray(grid[12:20, 2:10])
    assert np.array_equal(truth[4:], picture[4:]) and not np.array_equal(truth[:4], picture[:4])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["circle"]


def test_segmentation_many_classes_without_names():
    mask = torch.from_numpy((np.arange(30 * 30).reshape(1, 30, 30) // 30) % 25)  # 25 classes, one per row band
    fig = plot_segmentation(np.random.rand(1, 30, 30, 3), mask, mask, num_classes=25)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [str(k) for k in range(25)]
    assert figure_to_array(fig).shape[2] == 3


def test_segmentation_rejects_masks_of_other_size():
    with pytest.raises(ValueError, match=r"truth masks have shape \(1, 4, 4\) but the images are \(1, 8, 8\)"):
        plot_segmentation(np.zeros((1, 3, 8, 8)), np.zeros((1, 4, 4), dtype=int), np.zeros((1, 8, 8), dtype=int))
