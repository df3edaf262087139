"""The model debugger's summary table: one row per debugged layer and captured kind."""

from collections.abc import Mapping, Sequence

from utils.debugging.stats import STAT_NAMES


def _kind_order(kind: str) -> tuple[int, str, bool]:
    """Sort key: output, grad, then each parameter followed by its gradient (weight, weight_grad, bias...)."""
    return ({"output": 0, "grad": 1}.get(kind, 2), kind.removesuffix("_grad"), kind.endswith("_grad"))


def format_number(value: float) -> str:
    """Compact fixed-width rendering for table cells (scientific for very large or small)."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned text table with a rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def format_summary(
    layers: Sequence[tuple[str, str, str, int]],
    stats: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> str:
    """The summary table: one row per (layer, captured kind), layers in model order.

    `layers` holds (name, type, output shape, trainable parameters); `stats` maps
    layer -> kind ("output", "grad", "weight", "weight_grad", ...) -> statistic -> value.
    Kinds are listed output, grad, then each parameter and its gradient. A layer with nothing
    captured yet still gets one row so the table lists the whole selection.
    """
    header = ["layer", "type", "output shape", "params", "kind", *STAT_NAMES]
    rows = []
    for name, type_name, shape, params in layers:
        kinds = stats.get(name, {})
        if not kinds:
            rows.append([name, type_name, shape, str(params), "-", *(["-"] * len(STAT_NAMES))])
        for kind, values in sorted(kinds.items(), key=lambda item: _kind_order(item[0])):
            cells = [format_number(values[stat]) for stat in STAT_NAMES]
            rows.append([name, type_name, shape, str(params), kind, *cells])
    return format_table(header, rows)
