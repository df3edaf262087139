"""Training curves and run comparisons from the Logger's `metrics.csv`, saved as PNG.

The CSV is read by utils.log.metrics_csv (the Logger's own reader); only finite values are
drawn. pandas and matplotlib are imported on use, so importing this module at the top of a
training script costs nothing.
"""

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from utils.fileio import atomic_write_bytes
from utils.log.metrics_csv import finite_series, read_metrics
from utils.names import sanitize_name

# Series with at most this many points (e.g. validation every N epochs) are drawn raw with
# markers: smoothing a handful of points would only make them lag.
MARKER_LIMIT = 40

# Counters logged beside the metrics (e.g. `epoch`, to map steps to epochs): a straight line
# tells nothing, so they are not drawn.
COUNTER_NAMES = frozenset({"epoch", "step", "global_step", "iteration"})


def plotted_metrics(frame: "pd.DataFrame") -> list[str]:  # noqa: F821
    """Metric columns holding at least one finite value, in CSV (first-seen) order; no counters."""
    return [
        name for name in frame.columns
        if name.rsplit("/", 1)[-1] not in COUNTER_NAMES and len(finite_series(frame, name)) > 0
    ]


# Namespaces whose metrics share one unit and belong on one set of axes, with that unit's label.
SHARED_AXES_NAMESPACES = {"time": "time (ms)"}  # the profiler's section means


EPOCH_PREFIX = "epoch_"  # train/epoch_accuracy is drawn with val/accuracy


def group_metrics(metrics: Iterable[str]) -> dict[str, list[str]]:
    """Group names by their last '/' part without an `epoch_` prefix, so train/loss,
    train/epoch_loss and val/loss share one set of axes, as do train/epoch_accuracy and
    val/accuracy; names in a `SHARED_AXES_NAMESPACES` namespace (time/forward, time/backward)
    share one too."""
    groups: dict[str, list[str]] = {}
    for name in metrics:
        namespace, _, _ = name.partition("/")
        if namespace in SHARED_AXES_NAMESPACES and "/" in name:
            key = namespace
        else:
            key = name.rsplit("/", 1)[-1].removeprefix(EPOCH_PREFIX)
        groups.setdefault(key, []).append(name)
    return groups


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard's slider); 0 = raw."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing={weight} must be in [0, 1)")
    smoothed, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1.0 - weight) * value
        smoothed.append(average / (1.0 - weight**count))
    return smoothed


def plot_training_curves(
    csv_path: Path | str,
    out_dir: Path | str,
    metrics: Sequence[str] | None = None,
    smoothing: float = 0.0,
    skip_namespaces: Sequence[str] = (),
) -> list[Path]:
    """One PNG per metric group (e.g. `loss.png` with train/loss and val/loss) in `out_dir`.

    `metrics=None` plots every column with a finite value except those of `skip_namespaces`
    (such as "debug"); empty and all-NaN columns are skipped, so a missing or empty CSV gives no
    files. Named metrics must exist in the CSV.
    """
    frame = read_metrics(csv_path)
    available = plotted_metrics(frame)
    if metrics is None:
        chosen = [name for name in available if name.split("/", 1)[0] not in skip_namespaces]
    else:
        unknown = [name for name in metrics if name not in frame.columns]
        if unknown:
            raise ValueError(
                f"metric(s) {', '.join(unknown)} not in {csv_path}; available: {', '.join(available) or 'none'}"
            )
        chosen = [name for name in metrics if name in available]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for group, names in group_metrics(chosen).items():
        series = {name: finite_series(frame, name) for name in names}
        title = group if len(names) > 1 else names[0]  # a lone metric keeps its full name
        path = out_dir / f"{sanitize_name(group)}.png"
        save_figure(_draw_series(series, title=title, ylabel=SHARED_AXES_NAMESPACES.get(group, group), smoothing=smoothing), path)
        written.append(path)
    return written


def plot_run_comparison(
    run_csvs: dict[str, Path], metric: str, out_path: Path | str, smoothing: float = 0.0
) -> Path:
    """One metric of several runs on shared axes; runs without the metric are left out.

    Raises ValueError when no run has a finite value of `metric`.
    """
    series = {}
    for run, csv_path in run_csvs.items():
        frame = read_metrics(csv_path)
        if metric in frame.columns and len(finite_series(frame, metric)) > 0:
            series[run] = finite_series(frame, metric)
    if not series:
        raise ValueError(f"no run among {', '.join(run_csvs)} has values for metric {metric!r}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(_draw_series(series, title=f"{metric} by run", ylabel=metric, smoothing=smoothing), out_path)
    return out_path


def _draw_series(series: dict[str, "pd.Series"], title: str, ylabel: str, smoothing: float) -> "Figure":  # noqa: F821
    """Lines on one set of axes; a legend (for 2+ lines) sits outside so it never hides a curve."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for index, (label, values) in enumerate(series.items()):
        color = f"C{index % 10}"
        steps, ys = values.index.to_numpy(), values.to_numpy()
        sparse = len(ys) <= MARKER_LIMIT
        if smoothing > 0 and not sparse:
            ax.plot(steps, ys, color=color, alpha=0.25, linewidth=1)
            ax.plot(steps, smooth(ys, smoothing), color=color, label=label, linewidth=1.6)
        else:
            ax.plot(steps, ys, color=color, label=label, marker="o" if sparse else None, markersize=3, linewidth=1.4)
    ax.set_title(title + (f" (smoothing {smoothing:g})" if smoothing > 0 else ""))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if spans_decades([v for values in series.values() for v in values.to_numpy()]):
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=9)
    return fig


def spans_decades(values: list[float]) -> bool:
    """Positive data over more than two decades reads better on a log axis (losses, lr)."""
    if not values or min(values) <= 0:
        return False
    return math.log10(max(values) / min(values)) > 2


def save_figure(fig: "Figure", path: Path) -> None:  # noqa: F821
    """Render to memory, then write atomically: a reader never sees half a PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
