"""The rooms of src/, checked statically: every module is parsed with `ast`, so a rule fails
naming the line that breaks it.

- Logging (utils/log) never imports visualization, so plotting can read logs without a cycle;
  visualization/ and sweeps/ read metrics.csv through utils.log.metrics_csv, never a writer.
- Only the runs module (utils/management.py and utils/runs/) creates a run's folders.
"""

import ast
from pathlib import Path

from conftest import SRC

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

# The runs module: the one place that creates run folders (utils/management.py and utils/runs/).
RUNS_MODULES = ("utils/management.py", "utils/runs/")
# Names and attributes that denote a run folder or one of its sub-folders.
RUN_TABLE_NAMES = {"RUN_SUBDIRS", "RUN_FOLDERS"}
RUN_PATH_CALLS = {"run_path", "experiment_path", "experiments_root", "path_of_kind"}
RUN_PATH_ATTRIBUTES = {
    "path", "folder", "subfolders", "checkpoints", "logs", "plots", "visualizations", "exports", "archive", "get_path",
}
MAKE_FOLDER_CALLS = {"mkdir", "makedirs"}


def modules(exclude: tuple[str, ...] = ()) -> list[tuple[str, ast.Module]]:
    """Every module under src/ (paths relative to src/, with '/'), parsed, but those excluded."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if not relative.startswith(exclude):
            found.append((relative, ast.parse(path.read_text(), filename=str(path))))
    return found


def run_terms(node: ast.AST) -> set[str]:
    """The words of an expression that denote a run folder: a function or table name among
    RUN_PATH_CALLS / RUN_TABLE_NAMES, an attribute among RUN_PATH_ATTRIBUTES (`run.logs`)."""
    found = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Name) and item.id in RUN_PATH_CALLS | RUN_TABLE_NAMES:
            found.add(item.id)
        elif isinstance(item, ast.Attribute) and item.attr in RUN_PATH_ATTRIBUTES:
            found.add(item.attr)
    return found


def folder_targets(tree: ast.Module) -> list[tuple[int, ast.AST]]:
    """(line, expression) of each `X.mkdir(...)`, `os.makedirs(X)` and `os.mkdir(X)`: X is made."""
    targets = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in MAKE_FOLDER_CALLS:
            continue
        is_os_call = isinstance(node.func.value, ast.Name) and node.func.value.id == "os"
        target = (node.args[0] if node.args else None) if is_os_call else node.func.value
        if target is not None:
            targets.append((node.lineno, target))
    return targets


def table_uses(tree: ast.Module) -> list[int]:
    """Lines that import or name the table of a run's sub-folders."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            used = {alias.name for alias in node.names}
        elif isinstance(node, ast.Name):
            used = {node.id}
        elif isinstance(node, ast.Attribute):
            used = {node.attr}
        else:
            continue
        if used & RUN_TABLE_NAMES:
            lines.append(node.lineno)
    return lines


def test_only_the_runs_module_reads_the_table_of_run_folders() -> None:
    """Who iterates RUN_SUBDIRS can create a run's folders; outside the runs module, a `Run`'s
    `folder(kind)` / `subfolders` give the paths instead."""
    offenders = [f"{name}:{line}" for name, tree in modules(exclude=RUNS_MODULES) for line in table_uses(tree)]
    assert offenders == [], "only utils/management.py and utils/runs/ read RUN_SUBDIRS / RUN_FOLDERS"


def test_no_module_but_the_runs_module_creates_run_folders() -> None:
    offenders = [
        f"{name}:{line} makes {ast.unparse(target)}"
        for name, tree in modules(exclude=RUNS_MODULES)
        for line, target in folder_targets(tree)
        if run_terms(target)
    ]
    assert offenders == [], "run folders are created only in utils/management.py and utils/runs/"


def test_the_checks_see_a_run_folder_made_elsewhere() -> None:
    """The criterion catches the shapes run creation took before it had one home."""
    planted = ast.parse(
        "for sub in RUN_SUBDIRS:\n    (run.path / sub).mkdir(parents=True, exist_ok=True)\n"
        "os.makedirs(run_path(e, r))\nrun.checkpoints.mkdir()\nout_dir.mkdir()\n"
    )
    made = [ast.unparse(target) for _, target in folder_targets(planted) if run_terms(target)]
    assert sorted(made) == ["run.checkpoints", "run.path / sub", "run_path(e, r)"]
    assert table_uses(planted) == [1]
    assert Path(SRC / RUNS_MODULES[0]).is_file() and Path(SRC / RUNS_MODULES[1]).is_dir()
