"""Figures people look at during training: predictions, confusion matrix, segmentation.

Every function returns a matplotlib `Figure` made without pyplot (no global state, safe in
the logger's thread): pass it to `LOGGER.log_figure`, `figure_to_array` or `fig.savefig`.
matplotlib is imported when a figure is made, not when this module is imported.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from visualization.helper_functions import make_grid, to_numpy, to_uint8_image

RIGHT_COLOR = "#1a9641"
WRONG_COLOR = "#d7191c"
MAX_ANNOTATED_CLASSES = 30


def _new_figure(width: float, height: float, layout: str | None = "constrained") -> "Figure":  # noqa: F821
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _name(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def mistakes_first(labels: Any, predictions: Any) -> np.ndarray:
    """Indices that put wrong predictions first, each group in its original order.

    A grid of the first N samples of a good model is all green; this order shows its mistakes.
    """
    right = to_numpy(predictions).reshape(-1) == to_numpy(labels).reshape(-1)
    return np.argsort(right, kind="stable")


def plot_prediction_grid(
    images: Any,
    labels: Any,
    predictions: Any | None = None,
    class_names: Sequence[str] | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ncols: int = 8,
) -> "Figure":  # noqa: F821
    """A grid of images (N, C, H, W) or (N, H, W, C) titled with their labels.

    With `predictions`, each title reads `pred / true` and the image gets a green frame when
    right and a red one when wrong, so mistakes stand out at a glance. The grid is one image
    on one axes (a subplot per image costs ~30 ms each in matplotlib; this is called at every
    evaluation).
    """
    labels = to_numpy(labels).reshape(-1).astype(int)
    preds = None if predictions is None else to_numpy(predictions).reshape(-1).astype(int)
    batch = to_numpy(images)
    count = len(batch)
    if len(labels) != count or (preds is not None and len(preds) != count):
        shown = "no" if preds is None else len(preds)
        raise ValueError(f"got {count} images but {len(labels)} labels and {shown} predictions")
    tiles = [to_uint8_image(image, mean=mean, std=std) for image in batch]  # each (H, W, 3)
    colors = [
        None if preds is None else (RIGHT_COLOR if preds[i] == labels[i] else WRONG_COLOR)
        for i in range(count)
    ]
    titles = [
        _name(labels[i], class_names) if preds is None
        else f"{_name(preds[i], class_names)} / {_name(labels[i], class_names)}"
        for i in range(count)
    ]
    cols = max(1, min(ncols, count))
    rows = -(-count // cols)
    canvas, centers = _framed_grid(tiles, colors, cols)
    fig = _new_figure(1.3 * cols, 1.45 * rows + 0.3, layout=None)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.3 / (1.45 * rows + 0.3)))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for (x, y), title, color in zip(centers, titles, colors):
        ax.text(x, y, title, ha="center", va="center", fontsize=9, color=color or "black")
    if preds is not None:
        fig.suptitle(f"prediction / truth: {int((preds == labels).sum())} of {count} right", fontsize=10)
    return fig


def _framed_grid(
    tiles: list[np.ndarray], colors: list[str | None], cols: int
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One white RGB canvas holding every tile in a coloured frame, with a band for its title.

    Returns the canvas and, per tile, the (x, y) pixel centre of its title band.
    """
    from matplotlib.colors import to_rgb

    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    frame = max(1, round(max(height, width) / 16))
    band = max(3, round(0.35 * (height + 2 * frame)))  # room for the title above each tile
    cell_h, cell_w = band + height + 2 * frame, width + 2 * frame + 2 * frame
    rows = -(-len(tiles) // cols)
    canvas = np.full((rows * cell_h, cols * cell_w, 3), 255, dtype=np.uint8)
    centers = []
    for index, (tile, color) in enumerate(zip(tiles, colors)):
        top, left = (index // cols) * cell_h + band, (index % cols) * cell_w + frame
        if color is not None:
            rgb = (np.array(to_rgb(color)) * 255).round().astype(np.uint8)
            canvas[top : top + height + 2 * frame, left : left + width + 2 * frame] = rgb
        canvas[top + frame : top + frame + tile.shape[0], left + frame : left + frame + tile.shape[1]] = tile
        centers.append((left + frame + width / 2 - 0.5, top - band / 2 - 0.5))
    return canvas, centers


def confusion_matrix(targets: "Tensor", predictions: "Tensor", num_classes: int) -> "Tensor":  # noqa: F821
    """Counts (K, K) on the inputs' device: rows are true classes, columns predicted classes.

    A tensor, so that the matrices of batches and ranks add up into the matrix of a split.
    """
    import torch

    flat = torch.bincount(targets.reshape(-1) * num_classes + predictions.reshape(-1), minlength=num_classes**2)
    return flat.view(num_classes, num_classes)


def plot_confusion_matrix(
    matrix: Any,
    class_names: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    title: str | None = None,
) -> "Figure":  # noqa: F821
    """Heat map of a (K, K) confusion matrix, rows true and columns predicted.

    `normalize=True` divides each row by its total (recall per class; empty rows stay 0).
    Cells carry their numbers when K <= 30, beyond that only the colours remain readable.
    """
    counts = to_numpy(matrix).astype(np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {counts.shape}")
    size = counts.shape[0]
    names = [_name(i, class_names) for i in range(size)]
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        counts = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(max(3.5, 0.45 * size + 2.0), 16.0)
    fig = _new_figure(side + 1.5, side)  # room for the colour bar's labels
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=1 if normalize else max(counts.max(), 1))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    long_names = max(map(len, names)) > 2
    ax.set_xticks(range(size), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(size), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = int(round(to_numpy(matrix).sum()))
    ax.set_title(title or (f"confusion matrix ({'row-normalised' if normalize else 'counts'}, n={total})"))
    if size <= MAX_ANNOTATED_CLASSES:
        _annotate_cells(ax, counts, normalize)
    return fig


def _annotate_cells(ax: Any, values: np.ndarray, normalized: bool) -> None:
    threshold = values.max() / 2 if values.max() > 0 else 1.0
    fontsize = 9 if len(values) <= 12 else 8 if len(values) <= 20 else 6
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalized else f"{int(value)}"
        color = "white" if value > threshold else "black"
        ax.text(col, row, text, ha="center", va="center", color=color, fontsize=fontsize)


def class_colors(num_classes: int) -> np.ndarray:
    """(K, 3) uint8 colours, distinct for any K: tab10/tab20 when they suffice, else a hue wheel."""
    from matplotlib import colormaps

    if num_classes <= 10:
        rgb = colormaps["tab10"](np.arange(num_classes))[:, :3]
    elif num_classes <= 20:
        rgb = colormaps["tab20"](np.arange(num_classes))[:, :3]
    else:
        rgb = colormaps["hsv"](np.linspace(0.0, 1.0, num_classes, endpoint=False))[:, :3]
    return np.rint(rgb * 255).astype(np.uint8)


def overlay_mask(image: np.ndarray, mask: np.ndarray, colors: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend class colours into an (H, W, 3) uint8 image; ids outside 0..K-1 (ignore) stay bare."""
    valid = (mask >= 0) & (mask < len(colors))  # (H, W)
    painted = image.astype(np.float64)
    painted[valid] = (1 - alpha) * painted[valid] + alpha * colors[mask[valid]]
    return np.rint(painted).astype(np.uint8)


def plot_segmentation(
    images: Any,
    targets: Any,
    predictions: Any,
    class_names: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    background: int | None = None,
    alpha: float = 0.5,
    value_range: tuple[float, float] | None = None,
) -> "Figure":  # noqa: F821
    """Samples in columns; rows show the image, the true mask and the predicted mask over it.

    Images are (N, C, H, W) or (N, H, W, C), masks (N, H, W) class ids. `background` names a
    class left unpainted (and out of the legend) so that the objects stand out. The legend,
    below the grid so it never covers it, lists the classes that occur in either mask. The grid
    is one image on one axes, cheap enough to draw at every evaluation.
    """
    from matplotlib.patches import Patch

    pictures = [to_uint8_image(image, value_range=value_range) for image in to_numpy(images)]  # each (H, W, 3)
    rows = {"truth": to_numpy(targets).astype(np.int64), "prediction": to_numpy(predictions).astype(np.int64)}
    expected = (len(pictures), *pictures[0].shape[:2])
    for label, masks in rows.items():
        if masks.shape != expected:
            raise ValueError(f"{label} masks have shape {masks.shape} but the images are {expected}")
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(max(m.max() for m in rows.values())) + 1
    colors = class_colors(num_classes)
    shown = {label: masks if background is None else np.where(masks == background, -1, masks)  # -1 stays bare
             for label, masks in rows.items()}
    tiles = pictures + [overlay_mask(p, m, colors, alpha) for masks in shown.values() for p, m in zip(pictures, masks)]
    grid = make_grid(tiles, nrow=len(pictures))  # (3 rows of tiles, N columns, 3)
    fig = _new_figure(1.1 * len(pictures) + 1.0, 4.0)
    ax = fig.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    band = grid.shape[0] / 3
    ax.set_yticks([band * (i + 0.5) for i in range(3)], ["image", *rows])
    ax.set_xticks([])
    present = sorted({int(v) for m in shown.values() for v in np.unique(m) if 0 <= v < num_classes})
    handles = [Patch(color=colors[k] / 255, label=_name(k, class_names)) for k in present]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8)
    return fig
