"""``rtdenoise autostart --enable/--disable``: start the virtual microphone at login (XDG autostart, no root)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FILE_NAME = "rtdenoise-virtual-mic.desktop"


def autostart_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "autostart"


def launcher() -> list[str]:
    """The command that runs this installation's rtdenoise (its venv included) from a login session."""
    script = shutil.which("rtdenoise")
    return [str(Path(script).resolve())] if script else [sys.executable, "-m", "rtdenoise"]


RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")  # characters that make an Exec argument need quotes


def exec_quote(argument: str) -> str:
    """One argument of a desktop entry's Exec key as the Desktop Entry spec asks: % doubled; an argument with a
    reserved character in double quotes with ", `, $ and \\ escaped by a backslash, and then every backslash
    doubled (the string escape the spec applies to the whole value before the quoting rule)."""
    argument = argument.replace("%", "%%")
    if argument and not any(c in argument for c in RESERVED):
        return argument
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in argument)
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry(live_args: list[str]) -> str:
    command = " ".join(exec_quote(part) for part in launcher() + ["live", "--virtual-mic", *live_args])
    return "\n".join(["[Desktop Entry]", "Type=Application", "Name=rtdenoise virtual microphone",
                      "Comment=Denoised microphone for call apps (rtdenoise live --virtual-mic)",
                      f"Exec={command}", "Terminal=false", "X-GNOME-Autostart-enabled=true", ""])


def enable(live_args: list[str]) -> Path:
    """Write the entry (atomically); returns its path."""
    folder = autostart_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    partial = path.with_name(path.name + ".partial")
    partial.write_text(desktop_entry(live_args))
    partial.replace(path)
    return path


def status() -> tuple[Path, str | None]:
    """The entry's path and the command it runs at login, or None when autostart is off."""
    path = autostart_dir() / FILE_NAME
    if not path.is_file():
        return path, None
    lines = [line for line in path.read_text().splitlines() if line.startswith("Exec=")]
    return path, lines[0][len("Exec="):] if lines else ""


def disable() -> Path | None:
    """Remove the entry; returns its path, or None when there was none."""
    path = autostart_dir() / FILE_NAME
    if not path.exists():
        return None
    path.unlink()
    return path
