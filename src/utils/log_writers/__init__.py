"""Logging backends behind one small interface (`Writer`); the Logger fans out to them.

Submodules import their heavy library (tensorboard, wandb) only when a writer is created, so
importing this package stays cheap.
"""

from utils.log_writers.base import Writer

__all__ = ["Writer"]
