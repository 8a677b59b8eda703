"""`rtdenoise live` started as a user would in the device tests: the process once its streams are open, and
what it says while it runs.

Its stderr is read straight from the pipe (never through the text wrapper, which would keep what it read
ahead from ``communicate``)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time


def start_live(env: dict, *args: str, opened: str = "streams open") -> tuple[subprocess.Popen, str]:
    """``rtdenoise live ARGS`` with text pipes, returned once it has said ``opened`` (with what it said so far);
    an early end is an AssertionError with everything it said."""
    live = subprocess.Popen([sys.executable, "-m", "rtdenoise", "live", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    said = said_until(live, opened, seconds=None)
    if opened not in said:
        raise AssertionError("live ended early: " + said)
    return live, said


def said_until(live: subprocess.Popen, text: str, seconds: float | None) -> str:
    """What ``live`` says on stderr until it has said ``text``, ended, or ``seconds`` passed (None: no limit)."""
    fd, said = live.stderr.fileno(), b""
    deadline = None if seconds is None else time.monotonic() + seconds
    while text.encode() not in said:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:  # it ended
            break
        said += chunk
    return said.decode(errors="replace")


def threads_of_silent(live: subprocess.Popen, what: str) -> str:
    """End a live started with PYTHONFAULTHANDLER=1 that stayed silent about ``what`` by SIGABRT: what it said
    after, its threads' stacks included (for the failure message)."""
    live.send_signal(signal.SIGABRT)
    return f"(silent about {what}; live's threads:)\n" + live.communicate(timeout=30)[1]
