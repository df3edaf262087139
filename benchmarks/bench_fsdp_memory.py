"""Memory each rank holds under DDP and under FSDP2 (`training.parallel`), on 2 gloo ranks.

A real torchrun runs this file once per mode. Each rank wraps the same model (8 blocks of
Linear(1024, 1024), 8.4M parameters) with the engine's `training.parallel.parallelize`, trains
one AdamW step with gradient clipping, and reports the bytes of parameters, gradients and
optimizer state it holds: for FSDP the local shards of the DTensors. Target: FSDP holds about
1/2 of what DDP holds on each of 2 ranks (1/N on N).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIDTH, BLOCKS = 1024, 8


def _local_bytes(tensors) -> int:
    """Bytes of the storages behind this rank's part of the tensors (a DTensor's local shard);
    a storage that several tensors view (one reduce-scatter buffer) counts once."""
    storages = {}
    for tensor in tensors:
        storage = (tensor.to_local() if hasattr(tensor, "to_local") else tensor).untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def worker(mode: str) -> None:
    import torch
    import torch.distributed as dist
    from torch import nn

    from training.parallel import clip_gradients, parallelize

    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU()) for _ in range(BLOCKS)))
    model = parallelize(model, mode, "fp32", torch.device("cpu"), list(model.children()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(16, WIDTH)).square().mean().backward()
    clip_gradients(model, 1.0)
    optimizer.step()
    held = {
        "parameters": _local_bytes(model.parameters()),
        "gradients": _local_bytes(p.grad for p in model.parameters()),
        "optimizer": _local_bytes(v for state in optimizer.state.values() for v in state.values() if v.dim()),
    }
    if dist.get_rank() == 0:
        total = sum(p.numel() for p in model.parameters())
        print("HELD " + json.dumps({"count": total, **held}), flush=True)
    dist.barrier()
    dist.destroy_process_group()


def measure(mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, mode]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = [line for line in result.stdout.splitlines() if line.startswith("HELD ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{mode}: torchrun failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("HELD "):])


def main() -> None:
    results = {mode: measure(mode) for mode in ("ddp", "fsdp")}
    count = results["ddp"]["count"]
    print(f"torchrun, 2 gloo ranks, {BLOCKS} x Linear({WIDTH}, {WIDTH}): {count / 1e6:.1f}M parameters, fp32, AdamW")
    print(f"{'MiB held by rank 0':24} {'DDP':>8} {'FSDP':>8} {'FSDP/DDP':>9}")
    for kind in ("parameters", "gradients", "optimizer", "total"):
        ddp, fsdp = (sum(r[k] for k in ("parameters", "gradients", "optimizer")) if kind == "total" else r[kind]
                     for r in (results["ddp"], results["fsdp"]))
        print(f"{kind:24} {ddp / 2**20:8.1f} {fsdp / 2**20:8.1f} {fsdp / ddp:9.2f}")
    ratio = results["fsdp"]["parameters"] / results["ddp"]["parameters"]
    print(f"target: FSDP holds <= 0.55 of DDP's parameter bytes on 2 ranks: {'met' if ratio <= 0.55 else 'missed'} "
          f"({ratio:.2f})")


if __name__ == "__main__":
    if "RANK" in os.environ:
        worker(sys.argv[1])
    else:
        main()
