"""Figures people look at during training: predictions, confusion matrix, segmentation, features.

Every function returns a matplotlib `Figure` made without pyplot (no global state, safe in
the logger's thread): pass it to `LOGGER.log_figure`, `figure_to_array` or `fig.savefig`.
matplotlib is imported when a figure is made, not when this module is imported.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from visualization.helper_functions import to_numpy, to_uint8_image

RIGHT_COLOR = "#1a9641"
WRONG_COLOR = "#d7191c"
MAX_ANNOTATED_CLASSES = 30


def _new_figure(width: float, height: float) -> "Figure":  # noqa: F821
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _name(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


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
    right and a red one when wrong, so mistakes stand out at a glance.
    """
    labels = to_numpy(labels).reshape(-1).astype(int)
    preds = None if predictions is None else to_numpy(predictions).reshape(-1).astype(int)
    batch = to_numpy(images)
    count = len(batch)
    if len(labels) != count or (preds is not None and len(preds) != count):
        shown = "no" if preds is None else len(preds)
        raise ValueError(f"got {count} images but {len(labels)} labels and {shown} predictions")
    cols = max(1, min(ncols, count))
    rows = -(-count // cols)
    fig = _new_figure(1.3 * cols, 1.45 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for index, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= count:
            ax.set_axis_off()
            continue
        ax.imshow(to_uint8_image(batch[index], mean=mean, std=std), interpolation="nearest")
        true_name = _name(labels[index], class_names)
        if preds is None:
            ax.set_title(true_name, fontsize=9)
            continue
        color = RIGHT_COLOR if preds[index] == labels[index] else WRONG_COLOR
        ax.set_title(f"{_name(preds[index], class_names)} / {true_name}", fontsize=9, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(3)
    if preds is not None:
        fig.suptitle(f"prediction / truth: {int((preds == labels).sum())} of {count} right", fontsize=10)
    return fig


def confusion_matrix(targets: Any, predictions: Any, num_classes: int) -> np.ndarray:
    """Counts (K, K): rows are true classes, columns predicted classes."""
    true = to_numpy(targets).reshape(-1).astype(np.int64)
    pred = to_numpy(predictions).reshape(-1).astype(np.int64)
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


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
    fig = _new_figure(side + 1.0, side)
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
    image: Any,
    prediction: Any,
    target: Any | None = None,
    class_names: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    alpha: float = 0.5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> "Figure":  # noqa: F821
    """Image, prediction overlay and (optionally) ground-truth overlay side by side.

    Masks are (H, W) class ids; the legend, below the panels so it never covers the image,
    lists the classes that occur in either mask.
    """
    from matplotlib.patches import Patch

    picture = to_uint8_image(image, mean=mean, std=std)  # (H, W, 3)
    masks = [("prediction", to_numpy(prediction).astype(np.int64))]
    if target is not None:
        masks.append(("ground truth", to_numpy(target).astype(np.int64)))
    for label, mask in masks:
        if mask.shape != picture.shape[:2]:
            raise ValueError(f"{label} mask has shape {mask.shape} but the image is {picture.shape[:2]}")
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(max(m.max() for _, m in masks)) + 1
    colors = class_colors(num_classes)
    panels = [("image", picture)] + [(label, overlay_mask(picture, mask, colors, alpha)) for label, mask in masks]
    fig = _new_figure(3.2 * len(panels), 3.9)
    for ax, (label, pixels) in zip(fig.subplots(1, len(panels)), panels):
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    present = sorted({int(v) for _, mask in masks for v in np.unique(mask) if 0 <= v < num_classes})
    handles = [Patch(color=colors[k] / 255, label=_name(k, class_names)) for k in present]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8)
    return fig


def plot_feature_maps(
    feature_maps: Any,
    *,
    max_maps: int = 32,
    ncols: int = 8,
    title: str | None = None,
    cmap: str = "viridis",
) -> "Figure":  # noqa: F821
    """The channels of one activation, (C, H, W) or (1, C, H, W), each scaled to its own range.

    Meant for the debugger's captured activations: dead channels show as flat tiles.
    """
    maps = to_numpy(feature_maps).astype(np.float64)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"feature maps must be (C, H, W) or (1, C, H, W), got shape {maps.shape}")
    shown = maps[:max_maps]
    cols = max(1, min(ncols, len(shown)))
    rows = -(-len(shown) // cols)
    fig = _new_figure(1.4 * cols, 1.5 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for index, ax in enumerate(axes):
        ax.set_axis_off()
        if index < len(shown):
            channel = np.nan_to_num(shown[index])
            ax.imshow(channel, cmap=cmap, interpolation="nearest")
            ax.set_title(f"ch {index}", fontsize=8)
    suffix = f" (first {len(shown)} of {len(maps)} channels)" if len(shown) < len(maps) else ""
    fig.suptitle((title or "feature maps") + suffix, fontsize=10)
    return fig
