"""`training.compile`: torch.compile the model, once a check at start has shown this machine can.

Inductor, torch.compile's default backend, builds C++ kernels on the CPU and Triton kernels
(with C launchers) on CUDA. Without a compiler the first training step would fail deep inside
torch with a long trace; instead the session checks before anything is built that the compiler
is on PATH and that a tiny function compiles, and names the fix.
"""

import os
import shutil
import sys

import torch

from utils.errors import ConfigValueError

FIX = "install a C/C++ compiler (e.g. `apt-get install g++`) or set training.compile=false"


def compiler_candidates(device: torch.device) -> list[str]:
    """The compilers torch would call, any of which will do: $CXX (else g++, clang++ on macOS)
    for inductor's C++ on the CPU; $CC (else gcc or clang) for Triton's launchers on CUDA."""
    if device.type == "cuda":
        return [os.environ["CC"]] if os.environ.get("CC") else ["gcc", "clang"]
    return [os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")]


def check_compile(device: torch.device) -> None:
    """ConfigValueError (exit 2) when torch.compile cannot work here; a few seconds when it can."""
    candidates = compiler_candidates(device)
    if not any(shutil.which(name) for name in candidates):
        raise ConfigValueError(
            f"training.compile=true needs a compiler, and none of {', '.join(candidates)} is on PATH: {FIX}"
        )
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4, device=device))
    except Exception as error:  # torch raises many kinds: BackendCompilerFailed, CalledProcessError ...
        reason = " ".join(str(error).split())[:300]
        raise ConfigValueError(
            f"training.compile=true, but torch.compile fails on this machine ({type(error).__name__}: {reason}): {FIX}"
        ) from error

