"""Render the profiler's tree (as produced by `Profiler.to_dict`) as a table or flat paths."""

from collections.abc import Iterator
from typing import Any

HEADER = ("section", "calls", "total ms", "mean ms", "min ms", "max ms", "% parent")


def _rows(tree: dict[str, Any], depth: int) -> Iterator[list[str]]:
    for name, node in tree.items():
        yield [
            "  " * depth + name,
            str(node["calls"]),
            f"{node['total_ms']:.3f}",
            f"{node['mean_ms']:.4f}",
            f"{node['min_ms']:.4f}",
            f"{node['max_ms']:.4f}",
            f"{100 * node['share_of_parent']:.1f}",
        ]
        yield from _rows(node["children"], depth + 1)


def format_tree(tree: dict[str, Any]) -> str:
    """Indented tree table, children under their parent in first-entered order."""
    rows = list(_rows(tree, 0))
    if not rows:
        return "no profiled sections recorded\n"
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    lines = []
    for row in (HEADER, *rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines) + "\n"


def flatten_paths(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, int, float]]:
    """(slash-joined path, calls, total ms) for every section, parents before children."""
    for name, node in tree.items():
        path = f"{prefix}{name}"
        yield path, node["calls"], node["total_ms"]
        yield from flatten_paths(node["children"], f"{path}/")
