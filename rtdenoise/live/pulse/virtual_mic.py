"""A denoised virtual microphone on PulseAudio (and PipeWire, through pipewire-pulse), via pulsectl.

Two modules make it: a null sink that the live path plays the cleaned audio into,
and a remap source on that sink's monitor, which call apps list as a microphone
("rtdenoise (denoised ...)"). Both carry the name given to ``--name``, so modules
a crashed run left behind are found by name and unloaded at the next start. The
server's default sink and source are put back if loading the modules moved them
(the real microphone must never become our own output).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# PipeWire adds and removes a module's devices a moment after the module call returns: how long unloaded
# devices may still be listed (or a new one of their name refused), and new ones not yet be listed
SETTLE_SECONDS = 3.0


def import_pulsectl():
    try:
        import pulsectl
    except ImportError:
        raise ValueError("--virtual-mic needs pulsectl: pip install pulsectl") from None
    return pulsectl


def hold_name_lock(name: str, what: str = "virtual microphone", option: str = "--virtual-mic") -> int:
    """An exclusive lock on the virtual device ``name`` (of this user and sound server), held until its file
    descriptor (returned) is closed or the process ends; ValueError naming the running copy when it is taken."""
    import fcntl

    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/rtdenoise-{os.getuid()}") / "rtdenoise"
    folder.mkdir(parents=True, exist_ok=True)
    server = "".join(c if c.isalnum() else "_" for c in os.environ.get("PULSE_SERVER", "default"))[-80:]
    handle = os.open(folder / f"{option.lstrip('-')}-{name}-{server}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.read(handle, 32).decode(errors="replace").strip() or "unknown"
        os.close(handle)
        raise ValueError(f"{option}: a {what} called {name!r} is already running (process {owner}); "
                         "stop it first, or pick another --name") from None
    os.ftruncate(handle, 0)
    os.write(handle, str(os.getpid()).encode())
    return handle


def move_streams(streams: list[int], alive: set[int], target, move: Callable[[int, int], None]) -> int:
    """``move(stream, target.index)`` for each of ``streams`` still ``alive``; how many moved (none without a target)."""
    moved = 0
    for index in streams:
        if target is not None and index in alive:
            try:
                move(index, target.index)
                moved += 1
            except Exception:  # the program ended meanwhile
                pass
    return moved


def module_argument(args: str, key: str) -> str | None:
    for token in (args or "").split():
        if token.startswith(key + "="):
            return token.split("=", 1)[1].strip("\"'")
    return None


def check_name(name: str) -> str:
    """A name the sound server keeps as given (its source and sink names derive from it); else ValueError."""
    if not name or any(c in name for c in " \t\"'=") or len(name) > 64:
        raise ValueError(f"--name {name!r}: use letters, digits, '-', '_' or '.' (at most 64)")
    return name


@dataclass
class VirtualMic:
    """``with VirtualMic("rtdenoise", "Built-in Audio"):`` holds the source; leaving removes it."""
    name: str = "rtdenoise"
    microphone: str = "microphone"
    modules: list[int] = field(default_factory=list)
    removed_leftovers: int = 0

    option = "--virtual-mic"
    what = "virtual microphone"
    pinned = "output"  # our stream into the sink dies with it, never moved onto the speakers (LiveConfig.pinned)

    @property
    def sink_name(self) -> str:
        return f"{self.name}_denoised_sink"

    @property
    def label(self) -> str:
        return f"{self.what} {self.name!r}"

    def __post_init__(self) -> None:
        check_name(self.name)
        self._pulse = None
        self._lock: int | None = None

    def __enter__(self) -> "VirtualMic":
        pulsectl = import_pulsectl()
        try:
            self._pulse = pulsectl.Pulse("rtdenoise-virtual-mic")
        except Exception as error:  # pulsectl.PulseError: no server
            raise ValueError(f"{self.option}: no PulseAudio/PipeWire server to talk to ({error})") from None
        try:
            self._lock = hold_name_lock(self.name, self.what, self.option)  # a second copy must not take the
                                                                            # running one's modules
            self.removed_leftovers = self.remove_leftovers()
            self._refuse_taken_name()
            self._load_modules()
        except ValueError:
            self.close()
            raise
        except Exception as error:  # pulsectl.PulseError: the server failed or went away while we set up
            self.close()
            raise ValueError(f"{self.option}: the sound server failed while the {self.what} was being made "
                             f"({type(error).__name__}: {error})") from None
        return self

    def _devices_listed(self) -> list[bool]:
        """Whether the server lists each of our devices (the source, its sink) now."""
        pulse = self._pulse
        return [any(source.name == self.name for source in pulse.source_list()),
                any(sink.name == self.sink_name for sink in pulse.sink_list())]

    def _name_taken(self) -> bool:
        """The server has a device of one of our names."""
        return any(self._devices_listed())

    def _wait_until(self, condition: Callable[[], bool], deadline: float) -> None:
        """Poll ``condition`` until it holds or ``deadline`` (time.monotonic) passes."""
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _refuse_taken_name(self) -> None:
        if self._name_taken():
            raise ValueError(f"--name {self.name!r}: the sound server already has a source or sink of that "
                             "name (not ours); pick another --name")

    def reconnect(self) -> bool:
        """After the server restarted, or our modules were unloaded by someone else: connect again and load
        the modules anew. False while the server is not back (try again later); ValueError when it refuses."""
        pulsectl = import_pulsectl()
        self._disconnect()
        try:
            self._pulse = pulsectl.Pulse("rtdenoise-virtual-mic")
        except Exception:  # not back yet
            self._pulse = None
            return False
        deadline = time.monotonic() + SETTLE_SECONDS
        try:
            while True:
                self.modules.clear()
                self.remove_leftovers()  # half of ours may remain (one module unloaded by hand)
                # our lost devices may still be listed, or their names refused, for a moment (PipeWire)
                self._wait_until(lambda: not self._name_taken(), deadline)
                try:
                    self._refuse_taken_name()
                    self._load_modules()
                    return True
                except ValueError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
        except ValueError:
            raise
        except Exception:  # the server went away again mid-way
            self._disconnect()
            return False

    def healthy(self) -> bool:
        """Connected, and both our modules still loaded (False: the server died, or someone unloaded them)."""
        if self._pulse is None:
            return False
        try:
            loaded = {m.index for m in self._pulse.module_list()}
        except Exception:  # pulsectl.PulseError: the connection is gone
            return False
        return len(self.modules) == len(self._module_specs()) and all(index in loaded for index in self.modules)

    def _disconnect(self) -> None:
        if self._pulse is not None:
            try:
                self._pulse.close()
            except Exception:
                pass
            self._pulse = None

    def _module_specs(self) -> list[tuple[str, str]]:
        """The modules to load, in order: a null sink we play into, a source on its monitor."""
        description = f"{self.name} (denoised {self.microphone})".replace('"', "").replace("'", "")
        return [("module-null-sink", f"sink_name={self.sink_name} "
                 f"sink_properties='device.description=\"{self.name} output (feeds the virtual microphone)\"'"),
                ("module-remap-source", f"master={self.sink_name}.monitor source_name={self.name} "
                 f"source_properties='device.description=\"{description}\"'")]

    def _load_modules(self) -> None:
        pulse = self._pulse
        before = pulse.server_info()
        try:
            for module, arguments in self._module_specs():
                self.modules.append(pulse.module_load(module, arguments))
        except Exception as error:
            self._unload_own()
            raise ValueError(f"{self.option}: the server refused the {self.what} ({error})") from None
        # streams are opened on the new devices right after: wait until the server lists them
        self._wait_until(lambda: all(self._devices_listed()), time.monotonic() + SETTLE_SECONDS)
        after = pulse.server_info()
        if before.default_sink_name and after.default_sink_name != before.default_sink_name:
            pulse.sink_default_set(before.default_sink_name)
        if before.default_source_name and after.default_source_name != before.default_source_name:
            pulse.source_default_set(before.default_source_name)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Unload what this run loaded (idempotent)."""
        if self._pulse is None and self._lock is None:
            return
        self._unload_own()
        self._disconnect()
        if self._lock is not None:
            os.close(self._lock)  # after the modules are gone: the next copy may start now
            self._lock = None

    def _unload_own(self) -> None:
        """Unload the modules this run loaded (those still there)."""
        if self._pulse is not None:
            for index in reversed(self.modules):
                try:
                    self._pulse.module_unload(index)
                except Exception:  # already gone (the server restarted, or someone unloaded it)
                    pass
        self.modules.clear()

    def remove_leftovers(self) -> int:
        """Unload modules of this name left by a run that could not clean up (SIGKILL, a crash)."""
        ours = [m for m in self._pulse.module_list() if self.owns(m)]
        for module in sorted(ours, key=lambda m: -m.index):  # the source first, then its sink
            self._pulse.module_unload(module.index)
        # PipeWire may still list the devices for a moment after the unload returns (measured in CI): wait for
        # them to go, so that our own leftovers are not taken for another program's devices of the same name
        if ours:
            self._wait_until(lambda: not self._name_taken(), time.monotonic() + SETTLE_SECONDS)
        return len(ours)

    def owns(self, module) -> bool:
        """Is this loaded module one of this virtual microphone's two (found by name)?"""
        return ((module.name == "module-null-sink" and module_argument(module.argument, "sink_name") == self.sink_name)
                or (module.name == "module-remap-source"
                    and module_argument(module.argument, "source_name") == self.name
                    and module_argument(module.argument, "master") == f"{self.sink_name}.monitor"))

    def restart_sink_clock(self) -> None:
        """Suspend and resume our null sink, just after our output stream joined it. PulseAudio's null sink,
        while only its monitor is recorded, renders 2 s blocks ahead; a stream that joins then is taken nothing
        until that block has played out (measured: 0.8-1.7 s), and what the speaker says meanwhile is lost
        to catching up. Resuming restarts the sink's clock at now. Not on PipeWire, whose null sinks follow the
        graph's clock (no stall) and whose monitor stayed silent after it (measured). Best effort: a server that
        refuses is left be."""
        try:
            if "pipewire" in (self._pulse.server_info().server_name or "").lower():
                return
            sink = next((s for s in self._pulse.sink_list() if s.name == self.sink_name), None)
            if sink is not None:
                self._pulse.sink_suspend(sink.index, True)
                self._pulse.sink_suspend(sink.index, False)
        except Exception:  # pulsectl.PulseError: the server went away or does not suspend (handled by the watch)
            pass

    def listeners(self) -> int:
        """Programs recording from the virtual microphone now (0: nobody needs denoised audio)."""
        return len(self.listener_streams())

    def listener_streams(self) -> list[int]:
        """The recording streams (source outputs) of other programs on the virtual microphone."""
        source = next((s for s in self._pulse.source_list() if s.name == self.name), None)
        if source is None:
            return []
        me = str(os.getpid())  # only other programs' streams count, never one of this process
        return [o.index for o in self._pulse.source_output_list()
                if o.source == source.index and o.proplist.get("application.process.id") != me]

    def take_back(self, streams: list[int]) -> int:
        """Move these recording streams (moved to another microphone when ours vanished) back to ours;
        how many were moved."""
        source = next((s for s in self._pulse.source_list() if s.name == self.name), None)
        return move_streams(streams, {o.index for o in self._pulse.source_output_list()}, source,
                            self._pulse.source_output_move)

    def default_source(self) -> str:
        return self._pulse.server_info().default_source_name or ""

    def default_device(self) -> str:
        """The server's default device of the kind this feeds from (for the microphone: the default source)."""
        return self.default_source()

    def follows_default(self, input_device) -> bool:
        """Does the live path record the server's default microphone (none named, no PULSE_SOURCE)?"""
        return input_device in (None, "pulse", "default") and not os.environ.get("PULSE_SOURCE")

    @staticmethod
    def usage_message(used: bool) -> str:
        return "someone records it: denoising" if used else "nobody records it: model idle"

    def own_default_message(self, device: str) -> str:
        return (f"the default input is {device}, the virtual microphone itself (no real microphone?): not recording "
                "it; waiting for a real one")

    @staticmethod
    def new_default_message(device: str) -> str:
        return f"microphone is now {device} (the default input changed)"

    def is_own(self, source: str) -> bool:
        """Is ``source`` this virtual microphone, or the monitor of its sink (recording it would feed back)?"""
        return source in (self.name, f"{self.sink_name}.monitor")

    def live_rate(self, input_device) -> int | None:
        """The rate for the live path: our sink's own (the server's: 48 kHz on PipeWire, 44.1 kHz on a stock
        PulseAudio) when the input comes through the server too, so the server resamples neither direction;
        None (the input device's own rate) for a device named past the server, or a server that will not say."""
        from rtdenoise.engine.resample import check_sample_rate

        if input_device not in (None, "pulse", "default"):
            return None
        try:
            sink = next((s for s in self._pulse.sink_list() if s.name == self.sink_name), None)
            return check_sample_rate(int(sink.sample_spec.rate)) if sink is not None else None
        except Exception:  # pulsectl.PulseError, or a rate the engine does not take: PortAudio's choice stands
            return None

    def stream_environment(self) -> dict[str, str | None]:
        """What the live path's PulseAudio streams open with: play into our sink."""
        return {"PULSE_SINK": self.sink_name}


def project_modules(name: str = "rtdenoise", kind: type | None = None) -> list[str]:
    """Names of the loaded modules that belong to a virtual microphone (or ``kind``) called ``name`` (for tests)."""
    pulsectl = import_pulsectl()
    mic = (kind or VirtualMic)(name)
    with pulsectl.Pulse("rtdenoise-check") as pulse:
        return [f"{m.name} {m.argument}" for m in pulse.module_list() if mic.owns(m)]
