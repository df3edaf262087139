"""Early stopping on a validation metric: stop when it has not improved for `patience` evaluations.

Its state (best value, evaluations without improvement) goes into every checkpoint and comes
back on resume, so a resumed run stops at the same epoch as an uninterrupted one.
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from utils.config_fields import option


@dataclass(frozen=True, kw_only=True)
class EarlyStoppingConfig:
    SECTION: ClassVar[str] = "early_stopping"
    patience: int | None = option(None, "evaluations without improvement before training stops (null: never)", gt=0)
    metric: str = option("val/loss", "the validation metric watched: val/<one of the task's metrics>")
    mode: Literal["min", "max"] | None = option(
        None, "whether a smaller (min) or larger (max) metric is better (null: the direction the task declares for it)",
    )
    min_delta: float = option(0.0, "how much the metric must beat the best to count as an improvement", ge=0)


class EarlyStopping:
    """Counts evaluations without improvement; `update` says when to stop and why."""

    def __init__(self, config: EarlyStoppingConfig) -> None:
        self.config = config
        self.best: float | None = None
        self.stale = 0  # evaluations since the last improvement

    @property
    def enabled(self) -> bool:
        return self.config.patience is not None

    def update(self, value: float) -> str | None:
        """Record one evaluation; the reason to stop, or None to go on."""
        if not self.enabled:
            return None
        if self._improves(value):
            self.best, self.stale = value, 0
            return None
        self.stale += 1
        if self.stale < self.config.patience:
            return None
        return (
            f"early stopping: {self.config.metric} has not improved on {self.best:.6g} by more than "
            f"{self.config.min_delta:g} for {self.stale} evaluations (patience {self.config.patience})"
        )

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        delta = self.config.min_delta
        return value < self.best - delta if self.config.mode == "min" else value > self.best + delta

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.stale = state["best"], int(state["stale"])
