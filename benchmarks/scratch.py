"""A benchmark's scratch folder: the experiments root and W&B's files go there, W&B offline.

Imported first by each `bench_*.py` (the script's folder is on `sys.path`), so that nothing a
benchmark does writes into the repository or reaches the network.
"""

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_scratch(prefix: str) -> Path:
    """Create the folder, point the environment at it, and put `src/` on the import path."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        EXPERIMENTS_ROOT=str(scratch / "experiments"), WANDB_MODE="offline", WANDB_SILENT="true",
        WANDB_DISABLE_GIT="true", WANDB_CONFIG_DIR=str(scratch / "wandb-config"),
        WANDB_CACHE_DIR=str(scratch / "wandb-cache"), WANDB_DATA_DIR=str(scratch / "wandb-data"),
    )
    sys.path.insert(0, str(REPO / "src"))
    return scratch
