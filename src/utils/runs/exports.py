"""Where a run's exports go: `<run>/exports/<checkpoint>.<ext>`, or a path the user names that
lies inside the experiments root (nothing is ever written outside it).

Nothing here exports or creates: `06_export.py` checks `--out` before it imports torch, so a bad
path fails at once, and has `ensure_run` create a missing `exports/` (a run made before exports
existed) only once the export has passed its check.
"""

from pathlib import Path

from utils.errors import OutputPathError
from utils.management import ROOT_ENV_VAR, experiments_root
from utils.runs.run import Run


def default_export_path(run: Run, checkpoint: Path, extension: str) -> Path:
    """`<run>/exports/<checkpoint stem>.<extension>`: best.pt -> exports/best.onnx.

    OutputPathError when the exports folder is a link that leads out of the experiments root.
    """
    path = run.exports / f"{checkpoint.stem}.{extension}"
    _require_inside_root(path, str(path), "replace the link with a folder, or pass --out")
    return path.resolve()


def check_out_path(out: str, extension: str) -> Path:
    """The file `--out` names, resolved: it must end in `.<extension>`, lie inside the experiments
    root once symlinks are resolved (a model file is an output like any other: one root to back
    up, share or delete) and name a file in an existing folder; else OutputPathError (exit 2)."""
    path = Path(out).expanduser().absolute()
    given = f"--out {out}"
    _require_inside_root(path, given, f"leave --out out to write into the run's exports/, or set {ROOT_ENV_VAR}")
    resolved = path.resolve()
    if path.suffix != f".{extension}":
        raise OutputPathError(f"{given}: a .{extension} file is expected for this format")
    if not resolved.parent.is_dir():
        raise OutputPathError(f"{given}: the folder {resolved.parent} does not exist; create it first")
    if resolved.is_dir():
        raise OutputPathError(f"{given} is a folder; name the file to write")
    return resolved


def _require_inside_root(path: Path, given: str, fix: str) -> None:
    root = experiments_root()
    if root not in path.resolve().parents:
        raise OutputPathError(f"{given} lies outside the experiments root {root}; exports stay inside it ({fix})")
