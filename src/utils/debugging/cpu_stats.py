"""Statistics of a finite CPU tensor, in the calling thread: a C kernel built on first use, else NumPy.

Each of ATen's reductions over more than 32768 elements forks and joins its OpenMP pool, which
costs more than the reduction itself, stalls for milliseconds whenever another process holds a
core, and reads the tensor once more: that was most of the debugger's overhead on CPU. The C
kernel reads each value once, keeps every sum in SIMD registers and writes the statistics
straight into the result tensor; it is compiled with the system's C compiler into a private
temporary folder the first time a CPU tensor is measured (a fraction of a second, once per
process), for the CPU it runs on. Without a working compiler, NumPy makes a few passes instead.
"""

import ctypes
import math
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from string import Template

import numpy as np
import torch
from torch import Tensor

CANCELLATION = 0.05  # below this share of E[x^2], the variance is recomputed two-pass
BLOCK = 65536  # values per block of NumPy's |x| pass: 256 KiB of float32 stays in a core's L2 cache

# One function per element type, writing out[9] in STAT_NAMES order and returning 0, or returning 1
# when x holds NaN or Inf or a sum overflows. A block of 4096 values is summed in the element type
# across SIMD lanes, then added to double totals, so rounding stays at the scale of a block; a NaN
# leaves the extremes alone but turns the sums into NaN.
_KERNEL = Template("""
int stats_$type(const $type *x, long long n, float *out) {
    $type low = INFINITY, high = -INFINITY;
    double total = 0.0, squares = 0.0, magnitude = 0.0, zeros = 0.0;
    for (long long start = 0; start < n; start += 4096) {
        long long end = n - start < 4096 ? n : start + 4096;
        $type s = 0, s2 = 0, sa = 0;
        int z = 0;
        /* simdlen(32): several vectors per sum, so consecutive additions do not wait on each other */
#pragma omp simd simdlen(32) reduction(min : low) reduction(max : high) reduction(+ : s, s2, sa, z)
        for (long long i = start; i < end; i++) {
            $type v = x[i];
            low = v < low ? v : low;
            high = v > high ? v : high;
            s += v;
            s2 += v * v;
            sa += v < 0 ? -v : v;
            z += v == 0;
        }
        total += s; squares += s2; magnitude += sa; zeros += z;
    }
    if (!isfinite(total) || !isfinite(squares) || !isfinite(magnitude)) return 1;
    double mean = total / n, variance = squares / n - mean * mean;
    if (variance < $cancellation * squares / n) {  /* the mean dominates: E[x^2] - mean^2 lost its digits */
        /* two passes, corrected: the shift E[x - m] removes the error of the mean m itself */
        double centered = 0.0, shift = 0.0;
        $type m = ($type)mean;
        for (long long start = 0; start < n; start += 4096) {
            long long end = n - start < 4096 ? n : start + 4096;
            $type c = 0, d = 0;
#pragma omp simd simdlen(32) reduction(+ : c, d)
            for (long long i = start; i < end; i++) { c += (x[i] - m) * (x[i] - m); d += x[i] - m; }
            centered += c; shift += d;
        }
        shift /= n;
        mean = m + shift;
        variance = centered / n - shift * shift;
    }
    out[0] = mean; out[1] = sqrt(variance > 0 ? variance : 0); out[2] = low; out[3] = high;
    out[4] = magnitude / n; out[5] = sqrt(squares); out[6] = zeros / n; out[7] = 0; out[8] = 0;
    return 0;
}
""")
_SOURCE = "#include <math.h>\n" + "".join(_KERNEL.substitute(type=t, cancellation=CANCELLATION)
                                          for t in ("float", "double"))
# Tried in order: this CPU's vector instructions, then what any compiler for this platform accepts.
_FLAGS = (("-march=native", "-fopenmp-simd"), ("-fopenmp-simd",), ())
_TYPES = {torch.float32: "float", torch.float64: "double"}
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}
_LOCK = threading.Lock()
_kernels: dict[torch.dtype, Callable[..., int]] = {}
_built = False


def finite_cpu_stats(x: Tensor) -> Tensor | None:
    """Statistics (len(STAT_NAMES),) float32 of a non-empty float32/float64 CPU tensor that needs
    no grad, or None if it holds NaN or Inf or a sum would overflow: the caller then takes the
    general path, which counts them."""
    kernel = (_kernels if _built else load_kernels()).get(x.dtype)
    if kernel is None or not x.is_contiguous():
        return numpy_stats(x.reshape(-1).numpy())
    stats = torch.empty(9, dtype=torch.float32, device="cpu")  # (S,), whatever the default dtype and device
    return None if kernel(x.data_ptr(), x.numel(), stats.data_ptr()) else stats


def load_kernels() -> dict[torch.dtype, Callable[..., int]]:
    """The C kernels by element type, built on the first call; empty without a working compiler."""
    global _kernels, _built
    with _LOCK:
        if not _built:
            _kernels, _built = _build_kernels(), True
    return _kernels


def _build_kernels() -> dict[torch.dtype, Callable[..., int]]:
    """Compile `_SOURCE` with the first flags the compiler accepts, in a folder only this user can
    write to (so nothing can swap the library before it is loaded), and load it."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return {}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:  # mode 0700
        source, library = Path(folder) / "stats.c", Path(folder) / "stats.so"
        source.write_text(_SOURCE, encoding="utf-8")
        for flags in _FLAGS:
            command = [compiler, "-O3", *flags, "-shared", "-fPIC", str(source), "-o", str(library), "-lm"]
            try:
                if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                    return _bind(ctypes.CDLL(str(library)))  # stays mapped once the folder is gone
            except (OSError, subprocess.SubprocessError):
                return {}  # e.g. a temporary folder mounted noexec
    return {}


def _bind(library: ctypes.CDLL) -> dict[torch.dtype, Callable[..., int]]:
    kernels = {}
    for dtype, name in _TYPES.items():
        kernel = getattr(library, f"stats_{name}")
        kernel.argtypes = (ctypes.c_void_p, ctypes.c_longlong, ctypes.c_void_p)  # values, count, out
        kernel.restype = ctypes.c_int
        kernels[dtype] = kernel
    return kernels


def numpy_stats(values: np.ndarray) -> Tensor | None:
    """`finite_cpu_stats` of a 1-d array in NumPy passes: the extremes first, which rule out NaN
    and Inf (NumPy's min and max propagate NaN) and bound every sum, then only the passes the
    signs call for (a tensor that does not cross zero needs none for |x|, one that does not
    reach zero no count of zeros)."""
    n = values.size
    low, high = float(np.minimum.reduce(values)), float(np.maximum.reduce(values))
    bound = max(-low, high)  # every |x|, so no sum exceeds n * bound^2 (4x once centred)
    if not (math.isfinite(low) and math.isfinite(high) and 4 * n * bound * bound < _LARGEST[values.dtype]):
        return None
    total, squares = float(np.einsum("i->", values)), _sum_of_squares(values)
    if low > 0 or high < 0:  # never zero, one sign: |x| sums to |sum x|
        magnitude, zeros = abs(total), 0
    else:
        magnitude, nonzero = _magnitude_sum_and_nonzeros(values)
        zeros = n - nonzero
    mean = total / n
    variance = squares / n - mean * mean
    if variance < CANCELLATION * squares / n:  # mean dominates: E[x^2] - mean^2 lost its digits
        m = values.dtype.type(mean)  # the mean in the element type, as in the C kernel
        centered = values - m  # (N,), exact differences near the mean
        shift = float(np.einsum("i->", centered)) / n  # corrects the error of the mean itself
        mean, variance = float(m) + shift, _sum_of_squares(centered) / n - shift * shift
    stats = [mean, math.sqrt(max(variance, 0.0)), low, high, magnitude / n, math.sqrt(squares), zeros / n, 0.0, 0.0]
    return torch.tensor(stats, dtype=torch.float32, device="cpu")


def _sum_of_squares(values: np.ndarray) -> float:
    """x . x in one pass: OpenBLAS's float32 dot runs in the calling thread, its float64 dot
    spawns threads (the contention this path avoids), so float64 goes through einsum."""
    if values.dtype == np.float32:
        return float(np.dot(values, values))
    return float(np.einsum("i,i->", values, values))


def _magnitude_sum_and_nonzeros(values: np.ndarray) -> tuple[float, int]:
    """Sum of |x| and the count of non-zeros, block by block through one scratch buffer that
    stays in cache (a full-size |x| would be written to and read back from memory). |x| turns
    -0.0 into +0.0, so a zero is exactly an all-zero bit pattern."""
    scratch = np.empty(min(values.size, BLOCK), values.dtype)  # (B,)
    bits = scratch.view(f"i{scratch.itemsize}")  # (B,), same memory as integers
    total, nonzero = 0.0, 0
    for start in range(0, values.size, BLOCK):
        size = min(BLOCK, values.size - start)
        np.abs(values[start:start + size], out=scratch[:size])
        total += float(np.einsum("i->", scratch[:size]))
        nonzero += int(np.count_nonzero(bits[:size]))
    return total, nonzero
