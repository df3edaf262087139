"""Where a run's exports go: `<run>/exports/<checkpoint>.<ext>`, or a path the user names that
lies inside the experiments root (nothing is ever written outside it).

Nothing here exports or creates: `06_export.py` asks for the destination before the (slow) export,
so a bad `--out` fails at once, and has `ensure_run` create a missing `exports/` (a run made
before exports existed) only once the export has passed its check.
"""

from pathlib import Path

from utils.errors import OutputPathError
from utils.management import ROOT_ENV_VAR, experiments_root
from utils.runs.run import Run


def export_destination(run: Run, checkpoint: Path, extension: str, out: str | None = None) -> Path:
    """`<run>/exports/<checkpoint stem>.<extension>` (best.pt -> exports/best.onnx), or `out`.

    The file must lie inside the experiments root once symlinks are resolved (a model file is an
    output like any other: one root to back up, share or delete); `out` must also end in
    `.<extension>` and name a file in an existing folder. Anything else is an OutputPathError
    (exit 2). Nothing is created here.
    """
    path = run.exports / f"{checkpoint.stem}.{extension}" if out is None else Path(out).expanduser().absolute()
    root, resolved = experiments_root(), path.resolve()
    given = f"--out {out}" if out is not None else str(path)
    if root not in resolved.parents:
        raise OutputPathError(
            f"{given} lies outside the experiments root {root}; exports stay inside it (leave --out out "
            f"for {run.exports}, or set {ROOT_ENV_VAR})"
        )
    if out is None:
        return resolved
    if path.suffix != f".{extension}":
        raise OutputPathError(f"{given}: a .{extension} file is expected for this format")
    if not resolved.parent.is_dir():
        raise OutputPathError(f"{given}: the folder {resolved.parent} does not exist; create it first")
    if resolved.is_dir():
        raise OutputPathError(f"{given} is a folder; name the file to write")
    return resolved
