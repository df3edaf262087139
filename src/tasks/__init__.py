"""The shipped tasks: each module registers one task; the engine finds `task: NAME` in tasks/NAME.py."""
