"""The Logger's media calls: images, figures, histograms and text, bounded by the queue's bytes.

Media are copied on the caller's thread (the caller may reuse its buffer) and counted against
`media_queue_bytes` until the background thread has written them: a loop that logs images
faster than the writers encode them waits here, and the first wait warns once per run.
"""

from typing import Any

from utils.log.records import HISTOGRAM, IMAGE, TEXT
from utils.log.values import check_step, image_copy, key_error, snapshot


class LoggerMedia:
    """Media methods of `utils.logging.Logger`; `step=None` is the last step logged (0 before any).

    They use the Logger's `_check_open`, `_enabled`, `_worker`, `_media_budget`, `_last_step`
    and `warning`.
    """

    def log_image(self, name: str, image: Any, step: int | None = None, **options: Any) -> None:
        """Log an image as `visualizations/<name>_step<step>.png`, to TensorBoard and to W&B.

        It is a NumPy array or torch tensor (HW, CHW, HWC, or a batch -> grid; uint8, or floats
        in [0, 1]) or a PIL image in mode L or RGB; a matplotlib figure goes to `log_figure`.
        `options` (mean, std, value_range) go to `utils.log.images.to_uint8_image`.
        """
        self._check_open()
        if self._enabled:
            step = self._media_step(name, step)
            self._put_media((IMAGE, name, image_copy(name, image), step, options))

    def log_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        """Log a matplotlib figure as an image; the figure is closed afterwards.

        The figure is rendered on the calling thread because matplotlib is not thread-safe.
        """
        self._check_open()
        if self._enabled:
            from utils.log.images import figure_to_array

            step = self._media_step(name, step)
            self._put_media((IMAGE, name, figure_to_array(figure), step, {}))

    def log_histogram(self, name: str, values: Any, step: int | None = None) -> None:
        """Log the distribution of a tensor or array to TensorBoard and W&B."""
        self._check_open()
        if self._enabled:
            step = self._media_step(name, step)
            self._put_media((HISTOGRAM, name, snapshot(values), step))

    def log_text(self, name: str, text: str, step: int | None = None) -> None:
        """Log a piece of text to TensorBoard and W&B."""
        self._check_open()
        if self._enabled:
            step = self._media_step(name, step)
            self._put_media((TEXT, name, str(text), step))

    def _put_media(self, item: tuple) -> None:
        if not self._worker.put_media(item):
            self._check_open()  # finish() ran while this call waited for room: raise its error

    def _warn_media_wait(self, name: str) -> None:
        budget = self._media_budget / 2**20
        self.warning(
            f"media logging is slowing training: logging {name!r} waited for the logging thread "
            f"to write the {budget:g} MiB of media queued before it; log images less often (every "
            "N steps, not every step) or smaller, or raise Logger(media_queue_bytes=...)"
        )

    def _media_step(self, name: str, step: Any) -> int:
        if type(name) is not str or not name:
            raise key_error(name)
        if step is None:
            return self._last_step or 0
        return check_step(step, f"step of {name!r}")
