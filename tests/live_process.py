"""`rtdenoise live` started as a user would in the device tests: the process once its streams are open."""
from __future__ import annotations

import subprocess
import sys


def start_live(env: dict, *args: str, opened: str = "streams open") -> tuple[subprocess.Popen, str]:
    """``rtdenoise live ARGS`` with text pipes, returned once it has said ``opened`` (with what it said so far);
    an early end is an AssertionError with everything it said."""
    live = subprocess.Popen([sys.executable, "-m", "rtdenoise", "live", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    said = []
    while not any(opened in line for line in said):
        line = live.stderr.readline()
        if not line:
            raise AssertionError("live ended early: " + "".join(said) + live.stderr.read())
        said.append(line)
    return live, "".join(said)
