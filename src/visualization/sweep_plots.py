"""A sweep's metric against each swept parameter, one panel per parameter, saved as one PNG.

Draws the tidy table of `sweeps.table.sweep_frame` (columns trial, number, the parameters,
state, best, final): each trial's best value on y. Numeric parameters get a numeric x-axis (log
when positive values span more than two decades, as learning rates do), others one tick per
category. Trials are marked by state, so a pruned or failed trial never passes for a finished one.
matplotlib is imported on use.
"""

import math
from pathlib import Path

from visualization.plotting import save_figure, spans_decades

# state -> (marker, colour); states a trial can be in with a value (pending trials have none)
STATE_STYLES = {
    "done": ("o", "C0"),
    "pruned": ("v", "C1"),
    "failed": ("X", "C3"),
    "interrupted": ("s", "C7"),
    "running": ("^", "C2"),
}
OTHER_STYLE = ("D", "C4")  # a state this module does not know yet still gets drawn
PANELS_PER_ROW = 3
PANEL_SIZE = (3.8, 3.2)  # inches per panel


def is_numeric_parameter(values: "pd.Series") -> bool:  # noqa: F821
    """Numbers (not booleans) go on a numeric axis; anything else is a category."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(values) and not is_bool_dtype(values)


def category_positions(values: "pd.Series") -> dict[str, int]:  # noqa: F821
    """Each category's x position, in order of first appearance (for a grid: the spec's order)."""
    return {name: index for index, name in enumerate(dict.fromkeys(values.astype(str)))}


def draw_panel(ax: "Axes", frame: "pd.DataFrame", parameter: str, metric: str) -> None:  # noqa: F821
    """The best metric of every trial with a value against one parameter, one marker per state."""
    by_number = frame.sort_values("number")
    values = by_number[parameter].dropna()
    shown = by_number[by_number["best"].notna() & by_number[parameter].notna()]
    if is_numeric_parameter(values):
        xs = shown[parameter].astype("float64")
        if spans_decades(values.astype("float64").tolist()):
            ax.set_xscale("log")
    else:
        positions = category_positions(values)
        xs = shown[parameter].astype(str).map(positions)
        ax.set_xticks(range(len(positions)), list(positions), rotation=30 if max(map(len, positions), default=0) > 6 else 0)
        ax.set_xlim(-0.5, len(positions) - 0.5)
    for state, group in shown.groupby("state", sort=False):
        marker, color = STATE_STYLES.get(state, OTHER_STYLE)
        ax.scatter(xs[group.index], group["best"], marker=marker, color=color, s=36, alpha=0.85, label=state)
    ax.set_xlabel(parameter)
    if ax.get_subplotspec().is_first_col():  # one y label per row: every panel shares the metric
        ax.set_ylabel(f"best {metric}")
    ax.grid(True, alpha=0.3)


def draw_sweep(frame: "pd.DataFrame", parameters: list[str], metric: str, title: str) -> "Figure":  # noqa: F821
    """A figure with one panel per parameter (up to three a row) and one legend of trial states."""
    from matplotlib.figure import Figure

    columns = min(len(parameters), PANELS_PER_ROW)
    rows = math.ceil(len(parameters) / PANELS_PER_ROW)
    fig = Figure(figsize=(PANEL_SIZE[0] * columns + 1.2, PANEL_SIZE[1] * rows + 0.4), dpi=100, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, parameter in zip(axes, parameters):
        draw_panel(ax, frame, parameter, metric)
    for ax in axes[len(parameters):]:
        fig.delaxes(ax)
    handles = {label: handle for ax in axes[: len(parameters)] for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", title="trial state", fontsize=9)
    fig.suptitle(title)
    return fig


def plot_sweep(frame: "pd.DataFrame", parameters: list[str], metric: str, title: str, out_path: Path) -> Path:  # noqa: F821
    """`draw_sweep` saved atomically as a PNG at `out_path`; raises ValueError without any value."""
    if frame["best"].notna().sum() == 0:
        raise ValueError(f"no trial has a value of {metric!r} to plot")
    save_figure(draw_sweep(frame, parameters, metric, title), out_path)
    return out_path
