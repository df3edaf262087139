"""`python tests/with_tasks.py MODULE SCRIPT ARGS...`: run a src/ script after importing a test
module that registers tasks (or metric directions) of its own, as a user's project would.

Why a file rather than `python -c`: the training tests start it through tests/prewarmed.py, which
runs script files.
"""

import importlib
import runpy
import sys

if __name__ == "__main__":
    module, script = sys.argv[1], sys.argv[2]
    importlib.import_module(module)
    sys.argv = [script, *sys.argv[3:]]
    runpy.run_path(script, run_name="__main__")
