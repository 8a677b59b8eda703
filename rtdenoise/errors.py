"""One-line errors for every command: the first line of a message, exit codes, option checks."""
from __future__ import annotations

import argparse
import math
import pickle
import sys
from typing import Callable

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a tool killed by the signal reports
# What a bad input raises (missing, corrupt or unsafe files, impossible settings); the commands
# add their own error classes to these.
INPUT_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, pickle.UnpicklingError)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its class name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_command(main: Callable[[], int], prog: str, interrupted: str = "interrupted",
                errors: tuple[type[BaseException], ...] = INPUT_ERRORS) -> int:
    """Run ``main``; a bad input ends in ``prog: error: <one line>`` and exit status 2, not a traceback."""
    try:
        return int(main() or 0)
    except BrokenPipeError:  # `rtdenoise models | head`: the reader left; say nothing, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as error:
        print(f"{prog}: error: {first_line(error)}", file=sys.stderr)
        return EXIT_ERROR


def require_positive(option: str, value: float) -> None:
    """Refuse zero, negative and NaN values of ``option``."""
    if not value > 0:
        raise ValueError(f"{option} must be positive, got {value:g}")


def require_at_least(option: str, value: float, smallest: float) -> None:
    """Refuse values of ``option`` below ``smallest`` (and NaN)."""
    if not value >= smallest:
        raise ValueError(f"{option} must be at least {smallest:g}, got {value:g}")


def require_probability(option: str, value: float) -> None:
    """Refuse values of ``option`` outside 0..1 (and NaN)."""
    if not 0 <= value <= 1:
        raise ValueError(f"{option} must be between 0 and 1, got {value:g}")


def finite_float(text: str) -> float:
    """argparse type for numeric options: a finite number (inf and NaN are refused in one line)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other error of the commands:
    ``rtdenoise: error: argument --chunk-ms: expected a finite number, got 'inf'``, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog if self.prog.startswith("python -m ") else self.prog.split()[0]
        hint = f" (see {self.prog} --help)"
        print(f"{command}: error: {message}{hint}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)
