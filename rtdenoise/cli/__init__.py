"""The ``rtdenoise`` command: one module per sub-command, each with its argparse definition beside
its ``cmd_<name>(args) -> int``; shared options in ``options.py``.

Sits on top of everything: may import the engine, files, live, bench and the app (lazily, so that
``rtdenoise denoise`` never loads Qt or PortAudio); nothing imports the CLI.
"""
from __future__ import annotations

import signal

from rtdenoise import __version__
from rtdenoise.errors import INPUT_ERRORS, OneLineParser, run_command
from rtdenoise.files.audio_io import AudioError

from . import autostart, bench, denoise, export, gui, info, live
from .options import UsageError


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="rtdenoise", description="Streaming, real-time speech denoiser.")
    parser.add_argument("--version", action="version", version=f"rtdenoise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in (denoise, info, live, autostart, gui, bench, export):  # the order --help lists them in
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument already said in one line
        return int(done.code or 0)
    for number in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal ends a run as Ctrl-C does: nothing half-done
        signal.signal(number, _raise_interrupt)
    return run_command(lambda: args.func(args), "rtdenoise", "interrupted; unfinished outputs were removed",
                       INPUT_ERRORS + (AudioError, UsageError))


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
