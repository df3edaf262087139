"""Memory and caller time when images are logged faster than the writers can encode them.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_logging_media.py

The issue's loop: 1,500 calls of `LOGGER.log_image("seg", <512x512x3 uint8 overlay>, step)`
with TensorBoard on (and the PNG files every Logger writes), at the default media budget.
The loop runs in a fresh subprocess, because a process's peak RSS (VmHWM in /proc/self/status,
Linux) only grows: the child takes its RSS after setup (imports, Logger, one image logged and
flushed) as the baseline, resets the peak there where the kernel allows it, logs the images
and finishes. It prints the peak RSS above the baseline against the target (the byte budget
plus one image), the time the loop took and how much of it the caller spent waiting for room,
the time finish() took, and checks that every image reached TensorBoard and the PNG folder.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scratch import make_scratch

if TYPE_CHECKING:
    from utils.logging import Logger

IMAGES = 1500
MIB = 2**20


def overlay_image() -> np.ndarray:
    """A segmentation overlay: a smooth photo-like background, class colours at 40 %."""
    y, x = np.mgrid[0:512, 0:512]  # (H, W)
    photo = (np.sin(x / 23) + np.cos(y / 31)) * 60 + 128
    classes = np.stack([x // 64 * 37 % 256, y // 64 * 59 % 256, (x + y) // 96 * 71 % 256], axis=-1)
    return (0.6 * photo[..., None] + 0.4 * classes).astype(np.uint8)  # (H, W, 3)


def memory_mib(field: str) -> float:
    """VmRSS or VmHWM of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} is missing from /proc/self/status")


def reset_peak() -> bool:
    """Make VmHWM start again from VmRSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure() -> None:
    """The child: set up, take the baseline, log IMAGES images, finish, report."""
    from utils.logging import LOGGER, Logger

    image = overlay_image()
    logger = Logger("bench", "media")
    logger.initialize_tensorboard()
    LOGGER.log_image("warmup", image, 0)  # imports and first allocations of the writing path
    logger.flush()
    worker = logger._worker
    budget = worker._max_bytes / MIB
    baseline = memory_mib("VmRSS")
    exact = reset_peak()
    start = time.perf_counter()
    for step in range(IMAGES):
        LOGGER.log_image("seg", image, step)
    loop = time.perf_counter() - start
    start = time.perf_counter()
    logger.finish()
    finish = time.perf_counter() - start
    peak = memory_mib("VmHWM") - baseline
    print(f"{IMAGES} x log_image of {image.shape} uint8 ({image.nbytes / MIB:.2f} MiB), TensorBoard + PNG, "
          f"budget {budget:g} MiB")
    print(f"baseline RSS after setup {baseline:.0f} MiB; peak reset there: {'yes' if exact else 'no (peak may include setup)'}")
    print(f"caller: {loop:.1f} s in the loop, {worker.seconds_waited:.1f} s of it waiting for room "
          f"({loop / IMAGES * 1000:.1f} ms per call)")
    print(f"finish(): {finish:.1f} s; queue held at most {worker.bytes_high_water / MIB:.1f} MiB of media")
    print(f"every image in TensorBoard and visualizations/: {check_outputs(logger)}")
    limit = budget + image.nbytes / MIB
    verdict = "met" if peak <= limit else "NOT met"
    print(f"target: peak RSS above baseline <= budget + one image ({limit:.1f} MiB): {verdict} ({peak:.1f} MiB)")


def check_outputs(logger: "Logger") -> str:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logger.get_path("log")), size_guidance={"images": 0})
    accumulator.Reload()
    steps = [event.step for event in accumulator.Images("seg")]
    pngs = list(logger.get_path("visualization").glob("seg_step*.png"))
    if steps == list(range(IMAGES)) and len(pngs) == IMAGES:
        return "yes"
    return f"NO ({len(steps)} TensorBoard events, {len(pngs)} PNG files)"


def main() -> None:
    if not Path("/proc/self/status").exists():
        print("skipped: peak RSS is read from /proc/self/status (Linux only)")
        return
    scratch = make_scratch("bench_logging_media_")  # the child inherits its environment
    try:
        subprocess.run([sys.executable, __file__, "--child"], check=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        measure()
    else:
        main()
