"""``rtdenoise gui``: the desktop app."""
from __future__ import annotations

import argparse
from pathlib import Path

from rtdenoise.errors import finite_float

from .options import add_model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    gui = sub.add_parser("gui", help="the desktop app")
    gui.add_argument("--input", type=Path, dest="input_file", help="start with this file as the source")
    gui.add_argument("--screenshot", type=Path, help="save a screenshot of the window before quitting")
    gui.add_argument("--quit-after", type=finite_float, default=0, help="start, run this many seconds, then quit")
    gui.add_argument("--no-output", action="store_true", help="do not play to speakers")
    gui.add_argument("--view", choices=["waveforms", "spectrograms"], help="open in this view (default: the last one)")
    add_model_options(gui)
    gui.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from rtdenoise.app.main import run_app

    return run_app(args)
