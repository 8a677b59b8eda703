"""``rtdenoise autostart``: start the virtual microphone at login (an XDG autostart entry)."""
from __future__ import annotations

import argparse

from .options import add_model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    autostart = sub.add_parser("autostart", help="start the virtual microphone at login (XDG autostart entry)")
    switch = autostart.add_mutually_exclusive_group()  # neither: say whether it is on
    switch.add_argument("--enable", action="store_true", help="write the entry (~/.config/autostart)")
    switch.add_argument("--disable", action="store_true", help="remove it")
    autostart.add_argument("--name", default="rtdenoise", help="name of the virtual microphone")
    autostart.add_argument("--input", default=None, help="microphone (default: follow the default input)")
    add_model_options(autostart)
    autostart.set_defaults(func=cmd_autostart)


def cmd_autostart(args: argparse.Namespace) -> int:
    from rtdenoise.live import autostart

    if not (args.enable or args.disable):
        path, command = autostart.status()
        print(f"autostart is on: {path} runs {command}" if command is not None
              else f"autostart is off (no entry in {path.parent}); rtdenoise autostart --enable turns it on")
        return 0
    if args.disable:
        path = autostart.disable()
        print(f"removed {path}" if path else f"no autostart entry in {autostart.autostart_dir()}; nothing to do")
        return 0
    # everything the entry will run is checked now: a login must not fail in silence
    from rtdenoise.live.pulse.virtual_mic import check_name
    from rtdenoise.models.registry import read_checkpoint, resolve_model_path

    check_name(args.name)
    if args.backend == "onnx" or str(args.model or "").endswith(".onnx"):
        from rtdenoise.engine import load_model

        load_model(args.model, "cpu", "onnx")  # the file (or the export) must load at login
    elif args.model:
        read_checkpoint(resolve_model_path(args.model))
    live_args = ["--name", args.name] + (["--input", args.input] if args.input else []) \
        + (["--model", args.model] if args.model else []) + (["--backend", "onnx"] if args.backend == "onnx" else [])
    print(f"wrote {autostart.enable(live_args)}: the virtual microphone {args.name!r} starts at your next login")
    return 0
