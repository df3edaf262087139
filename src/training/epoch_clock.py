"""The epoch line's timing: elapsed time and an ETA."""

import time


class EpochClock:
    """Elapsed time and an ETA from the mean epoch time of this session (resumes included)."""

    def __init__(self, first_epoch: int, epochs: int) -> None:
        self.first_epoch, self.epochs = first_epoch, epochs
        self.started = time.perf_counter()

    def lap(self, epoch: int) -> str:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / max(epoch - self.first_epoch, 1) * (self.epochs - epoch)
        return f"{elapsed:.1f} s, eta {eta:.0f} s"
