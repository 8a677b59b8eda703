"""Sub-commands beyond denoise/info: registered here to keep cli.py short."""
from __future__ import annotations

import argparse
from typing import Callable


def register(sub: argparse._SubParsersAction, add_model_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the live, gui and bench sub-commands that exist."""
