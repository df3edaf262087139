"""`python tests/run_commands.py JSON`: run the `python src/NN_name.py ...` commands of the JSON
list one after another in this interpreter, as `python` would run each (`__main__`, its exit
code), and print their exit codes as a JSON list: one start-up for a README block's commands."""

import json
import runpy
import shlex
import sys

if __name__ == "__main__":
    codes = []
    for command in json.loads(sys.argv[1]):
        python, script, *args = shlex.split(command)
        sys.argv = [script, *args]
        try:
            runpy.run_path(script, run_name="__main__")
            codes.append(0)
        except SystemExit as exit:
            codes.append(exit.code or 0)
    print(json.dumps(codes))
