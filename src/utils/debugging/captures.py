"""What the model debugger keeps of a captured tensor: on-device statistics, detached copies, or both."""

from collections import deque
from collections.abc import Sequence

from torch import Tensor

from utils.debugging.memo import StatsMemo
from utils.debugging.stats import STAT_NAMES, compute_stats_many, to_floats

KEEP = ("stats", "tensors", "both")


class Captures:
    """The latest statistics per layer and kind, and the last `buffer_size` copies of each.

    Kinds are "output", "grad" (of the output), a parameter's name ("weight") and its gradient
    ("weight_grad"). Copies are detached clones, never views that later writes would change.
    """

    def __init__(self, keep: str, buffer_size: int):
        self.keep, self.buffer_size = keep, buffer_size
        self._stats: dict[str, dict[str, Tensor]] = {}  # layer -> kind -> (S,) statistics
        self._memo = StatsMemo()  # a step's aliases (Flatten, Identity, their gradients) are measured once
        self._buffers: dict[tuple[str, str], deque[Tensor]] = {}

    def new_step(self) -> None:
        """Forget which tensors were measured: a new step's tensors must be measured afresh."""
        self._memo.clear()

    def record(self, name: str, kind: str, tensor: Tensor) -> None:
        """Keep `tensor`'s statistics and/or a copy of it."""
        if self.keep != "tensors":
            self._stats.setdefault(name, {})[kind] = self._memo.measure(tensor)
        if self.keep != "stats":
            self._copy(name, kind, tensor)

    def record_many(self, items: Sequence[tuple[str, str, Tensor]]) -> None:
        """`record` for many (layer, kind, tensor), with the statistics of the small ones batched."""
        if self.keep != "tensors":
            for (name, kind, _), stats in zip(items, compute_stats_many([t for *_, t in items]), strict=True):
                self._stats.setdefault(name, {})[kind] = stats
        if self.keep != "stats":
            for name, kind, tensor in items:
                self._copy(name, kind, tensor)

    def _copy(self, name: str, kind: str, tensor: Tensor) -> None:
        buffer = self._buffers.setdefault((name, kind), deque(maxlen=self.buffer_size))
        buffer.append(tensor.detach().clone())

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        """Latest statistics as floats: layer -> kind -> stat (synchronises once)."""
        return to_floats(self._stats)

    def stat_tensors(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """Latest statistics as on-device 0-d tensors (no synchronisation)."""
        return {layer: {kind: dict(zip(STAT_NAMES, vector.unbind(), strict=True)) for kind, vector in kinds.items()}
                for layer, kinds in self._stats.items()}

    def tensors(self, layer: str, kind: str) -> list[Tensor]:
        """Copies for `layer` and `kind`, oldest first."""
        return list(self._buffers.get((layer, kind), ()))
