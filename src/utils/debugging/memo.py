"""Statistics measured once per tensor memory: an alias of a measured tensor reuses them.

Flatten and other reshapes, Identity and Dropout in eval mode hand their input's memory on as
their output, and autograd passes the same gradient (or a view of it) to both ends of such a
layer; measuring it again would repeat every pass over the tensor for the same numbers.
"""

import weakref

from torch import Tensor

from utils.debugging.stats import compute_stats


class StatsMemo:
    """`compute_stats` that reuses the statistics of an earlier tensor reading the same elements.

    A tensor matches an earlier one when it reads the same memory in the same order (address,
    element type, device, and shape and strides unless both are contiguous), the earlier tensor
    is still alive, so its memory cannot have been handed to another tensor, and its version
    counter, which every in-place write through any of its views bumps, has not moved since it
    was measured. Only weak references are kept: the memo never extends a tensor's life.
    """

    def __init__(self) -> None:
        # memory key -> (measured tensor, its version when measured, its (S,) statistics)
        self._entries: dict[tuple, tuple[weakref.ref[Tensor], int, Tensor]] = {}

    def measure(self, tensor: Tensor) -> Tensor:
        """Statistics of `tensor` as a (len(STAT_NAMES),) vector, reused when it aliases an earlier one."""
        if tensor.is_inference():  # no version counter to prove it unchanged
            return compute_stats(tensor)
        key = _memory_key(tensor)
        entry = self._entries.get(key)
        if entry is not None:
            source, version, stats = entry[0](), entry[1], entry[2]
            if source is not None and source._version == version and source.data_ptr() == key[0]:
                return stats
        stats = compute_stats(tensor)
        self._entries[key] = (weakref.ref(tensor), tensor._version, stats)
        return stats

    def clear(self) -> None:
        """Forget every measurement (at each step, so the table stays as small as one step's captures)."""
        self._entries.clear()


def _memory_key(tensor: Tensor) -> tuple:
    """Which elements `tensor` reads, in which order: a contiguous reshape reads the same ones."""
    layout = tensor.numel() if tensor.is_contiguous() else (tuple(tensor.shape), tensor.stride())
    return tensor.data_ptr(), tensor.dtype, tensor.device, layout
