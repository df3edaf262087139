"""The random states a checkpoint carries (Python, NumPy, torch CPU and CUDA), as weights_only types.

torch and numpy are imported inside the functions, so importing this module stays cheap.
"""

import random
from typing import Any


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and every CUDA device's random state, as weights_only types."""
    import numpy as np
    import torch

    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    return {
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),  # (625,)
            "gauss_next": None if py_gauss is None else float(py_gauss),
        },
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),  # (624,) uint32 values
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo `capture_rng_state`: the next random draws equal those made after the capture.

    CUDA states are restored for the devices this machine has (the first N of the saved ones).
    """
    import numpy as np
    import torch

    py = state["python"]
    internal = tuple(int(x) for x in py["internal"].tolist())
    random.setstate((py["version"], internal, py["gauss_next"]))
    npy = state["numpy"]
    keys = npy["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    # map_location may have moved the states to a GPU; the setters want CPU byte tensors.
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device=index)
