"""Running averages over an epoch, without synchronising a GPU on every update.

Tensors are accumulated as tensors (on their device); they become Python floats only when an
average is read, typically once per epoch.
"""

from typing import Any


class RunningAverage:
    """Weighted running average of one quantity; `val` is the last value, `avg` the mean."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every value (start of an epoch)."""
        self.val: Any = 0.0
        self.sum: Any = 0.0
        self.count = 0

    def update(self, value: Any, n: int = 1) -> None:
        """Add `value` (a number or a 0-d tensor) as the mean of `n` samples."""
        if n < 0:
            raise ValueError(f"the sample count n must be >= 0, got {n}")
        if hasattr(value, "detach"):
            value = value.detach()
        self.val = value
        self.sum = self.sum + value * n
        self.count += n

    @property
    def avg(self) -> float:
        """The mean so far as a float (NaN before the first update)."""
        return float(self.sum) / self.count if self.count else float("nan")


AverageMeter = RunningAverage  # the name used by the original template


class MetricTracker:
    """Running averages of several named metrics: `update("loss", v, n)`, then `result()`."""

    def __init__(self, *keys: str) -> None:
        self._meters: dict[str, RunningAverage] = {key: RunningAverage() for key in keys}

    def update(self, key: str, value: Any, n: int = 1) -> None:
        """Add a value of metric `key` (new keys are added on first use)."""
        meter = self._meters.get(key)
        if meter is None:
            meter = self._meters[key] = RunningAverage()
        meter.update(value, n)

    def update_all(self, values: dict[str, Any], n: int = 1) -> None:
        """`update` for every item of `values`, all weighted by `n`."""
        for key, value in values.items():
            self.update(key, value, n)

    def avg(self, key: str) -> float:
        """The running average of `key`; KeyError naming the tracked keys when unknown."""
        if key not in self._meters:
            tracked = ", ".join(self._meters) or "none"
            raise KeyError(f"metric {key!r} is not tracked; tracked: {tracked}")
        return self._meters[key].avg

    def result(self, prefix: str = "") -> dict[str, float]:
        """{prefix + key: average} of every metric with at least one update, ready for `log`."""
        return {prefix + key: meter.avg for key, meter in self._meters.items() if meter.count}

    def reset(self) -> None:
        """Start a new epoch: every average back to empty, keys kept."""
        for meter in self._meters.values():
            meter.reset()

    def keys(self) -> list[str]:
        """The tracked metric names in first-seen order."""
        return list(self._meters)
