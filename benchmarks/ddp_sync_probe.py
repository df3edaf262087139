"""Run 02_train.py's main under torchrun and count, on the training thread, what blocks the host.

Counted while `Trainer.train_epoch` runs: blocking reads of tensors (`.item()`, `.tolist()`,
`bool(t)`, `float(t)`) and collectives called from Python (`all_reduce`, `broadcast`,
`all_gather`, `barrier`). DDP's own gradient all-reduce runs inside backward in C++ and is not
counted: it is the same in every version. Listed apart, as no sync on a GPU: torch's own reads
(AdamW's step counters are CPU tensors) and LOGGER's read of a CPU tensor (a GPU tensor is queued
for the logging thread instead, see utils.log.values.to_number). Rank 0 prints one JSON line.
Usage (by bench_ddp_sync.py): torchrun ... ddp_sync_probe.py SRC -e EXP -r RUN [--set ...]
"""

import json
import sys
import threading
import time
from collections import Counter

SRC = sys.argv[1]
sys.path.insert(0, SRC)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

COUNTS: Counter = Counter()
CPU_ONLY = {"utils.log.values:to_number"}  # reads a CPU tensor at once; a GPU tensor is queued
STATE = {"counting": False, "steps": 0, "seconds": 0.0}
TRAINING_THREAD = threading.get_ident()


def counted(kind: str, original):
    def wrapper(*args, **kwargs):
        if STATE["counting"] and threading.get_ident() == TRAINING_THREAD:
            frame = sys._getframe(1)
            caller = f"{frame.f_globals.get('__name__', '')}:{frame.f_code.co_name}"
            if caller.startswith("torch."):  # AdamW's step counters: CPU tensors even on a GPU, no sync
                COUNTS[f"torch-internal {kind}"] += 1
            elif caller in CPU_ONLY:  # on an accelerator this branch queues the tensor instead
                COUNTS[f"cpu-only {kind} ({caller})"] += 1
            else:
                COUNTS[kind] += 1
                COUNTS[f"from {caller}"] += 1
        return original(*args, **kwargs)
    return wrapper


for name in ("item", "tolist", "__bool__", "__float__"):
    setattr(torch.Tensor, name, counted(f"read:{name}", getattr(torch.Tensor, name)))
for name in ("all_reduce", "broadcast", "all_gather", "barrier"):
    setattr(dist, name, counted(f"collective:{name}", getattr(dist, name)))

from training import trainer as trainer_module  # noqa: E402

original_epoch = trainer_module.Trainer.train_epoch


def timed_epoch(self):
    before = self.state.global_step
    STATE["counting"] = True
    start = time.perf_counter()
    try:
        return original_epoch(self)
    finally:
        STATE["seconds"] += time.perf_counter() - start
        STATE["counting"] = False
        STATE["steps"] += self.state.global_step - before


trainer_module.Trainer.train_epoch = timed_epoch

import runpy  # noqa: E402

sys.argv = ["02_train.py", *sys.argv[2:]]
try:
    runpy.run_path(f"{SRC}/02_train.py", run_name="__main__")
except SystemExit as exit_:
    code = exit_.code
else:
    code = 0
import os  # noqa: E402

if os.environ.get("RANK", "0") == "0":
    steps = max(STATE["steps"], 1)
    reads = sum(v for k, v in COUNTS.items() if k.startswith("read:"))  # our code's reads only
    collectives = sum(v for k, v in COUNTS.items() if k.startswith("collective:"))
    print("PROBE " + json.dumps({
        "exit": code, "steps": STATE["steps"], "reads_per_step": reads / steps,
        "collectives_per_step": collectives / steps, "steps_per_s": STATE["steps"] / max(STATE["seconds"], 1e-9),
        "detail": dict(COUNTS),
    }))
