"""One-line errors for the training commands (bad data, model or checkpoint files), as the app gives."""
from __future__ import annotations

import pickle
import sys
from typing import Callable

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_command(main: Callable[[], int], prog: str) -> int:
    """Run ``main``; a bad input ends in ``prog: error: <first line>`` and exit status 2, not a traceback."""
    try:
        return int(main() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
        text = str(error).strip()
        print(f"{prog}: error: {text.splitlines()[0] if text else type(error).__name__}", file=sys.stderr)
        return EXIT_ERROR
