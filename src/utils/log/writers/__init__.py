"""Logging backends behind one small interface (`base.Writer`); the Logger fans out to them.

Each backend's module declares its config keys (a typed `logging` section) and a start
function; `registry` maps the backend's name to both.

Submodules import their heavy library (tensorboard, wandb) only when a writer is created, so
importing this package stays cheap.
"""
