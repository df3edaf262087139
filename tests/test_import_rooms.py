"""Rooms of the logging package, checked statically from every module's imports (`ast`).

Logging (utils/log) never imports visualization, so plotting can read logs without a cycle;
visualization/ and sweeps/ read metrics.csv through utils.log.metrics_csv, never a writer.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
WRITERS = "utils.log.writers"


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth (lazy imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _offenders(folders: list[str], forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(SRC)} imports {name}"
        for folder in folders
        for path in sorted((SRC / folder).rglob("*.py"))
        for name in sorted(_imports(path))
        if name == forbidden or name.startswith(forbidden + ".")
    ]


def test_logging_never_imports_visualization():
    assert _offenders(["utils/log"], "visualization") == []


def test_visualization_and_sweeps_never_import_a_writer_module():
    assert _offenders(["visualization", "sweeps"], WRITERS) == []


def test_the_check_sees_lazy_and_from_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from utils.log.writers.csv_writer import STEP_COLUMN\nimport visualization.plotting\n")
    assert {"utils.log.writers.csv_writer", "visualization.plotting"} <= _imports(module)
