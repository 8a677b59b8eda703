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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def import_pulsectl():
    try:
        import pulsectl
    except ImportError:
        raise ValueError("--virtual-mic needs pulsectl: pip install pulsectl") from None
    return pulsectl


def hold_name_lock(name: str) -> int:
    """An exclusive lock on the virtual microphone ``name`` (of this user and sound server), held until its file
    descriptor (returned) is closed or the process ends; ValueError naming the running copy when it is taken."""
    import fcntl

    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/rtdenoise-{os.getuid()}") / "rtdenoise"
    folder.mkdir(parents=True, exist_ok=True)
    server = "".join(c if c.isalnum() else "_" for c in os.environ.get("PULSE_SERVER", "default"))[-80:]
    handle = os.open(folder / f"virtual-mic-{name}-{server}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = os.read(handle, 32).decode(errors="replace").strip() or "unknown"
        os.close(handle)
        raise ValueError(f"--virtual-mic: a virtual microphone called {name!r} is already running (process {owner}); "
                         "stop it first, or pick another --name") from None
    os.ftruncate(handle, 0)
    os.write(handle, str(os.getpid()).encode())
    return handle


def _args_name(args: str, key: str) -> str | None:
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

    @property
    def sink_name(self) -> str:
        return f"{self.name}_denoised_sink"

    def __post_init__(self) -> None:
        check_name(self.name)
        self._pulse = None
        self._lock: int | None = None

    def __enter__(self) -> "VirtualMic":
        pulsectl = import_pulsectl()
        try:
            self._pulse = pulsectl.Pulse("rtdenoise-virtual-mic")
        except Exception as error:  # pulsectl.PulseError: no server
            raise ValueError(f"--virtual-mic: no PulseAudio/PipeWire server to talk to ({error})") from None
        try:
            self._lock = hold_name_lock(self.name)  # a second copy must not take the running one's modules
            self.removed_leftovers = self.remove_leftovers()
            self._refuse_taken_name()
        except ValueError:
            self.close()
            raise
        self._load_modules()
        return self

    def _refuse_taken_name(self) -> None:
        pulse = self._pulse
        if any(source.name == self.name for source in pulse.source_list()) \
                or any(sink.name == self.sink_name for sink in pulse.sink_list()):
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
        try:
            self.modules.clear()
            self.remove_leftovers()  # half of ours may remain (one module unloaded by hand)
            self._refuse_taken_name()
            self._load_modules()
        except ValueError:
            raise
        except Exception:  # the server went away again mid-way
            self._disconnect()
            return False
        return True

    def healthy(self) -> bool:
        """Connected, and both our modules still loaded (False: the server died, or someone unloaded them)."""
        if self._pulse is None:
            return False
        try:
            loaded = {m.index for m in self._pulse.module_list()}
        except Exception:  # pulsectl.PulseError: the connection is gone
            return False
        return len(self.modules) == 2 and all(index in loaded for index in self.modules)

    def _disconnect(self) -> None:
        if self._pulse is not None:
            try:
                self._pulse.close()
            except Exception:
                pass
            self._pulse = None

    def _load_modules(self) -> None:
        pulse = self._pulse
        before = pulse.server_info()
        description = f"{self.name} (denoised {self.microphone})".replace('"', "").replace("'", "")
        try:
            self.modules.append(pulse.module_load(
                "module-null-sink", f"sink_name={self.sink_name} "
                f"sink_properties='device.description=\"{self.name} output (feeds the virtual microphone)\"'"))
            self.modules.append(pulse.module_load(
                "module-remap-source", f"master={self.sink_name}.monitor source_name={self.name} "
                f"source_properties='device.description=\"{description}\"'"))
        except Exception as error:
            self.close()
            raise ValueError(f"--virtual-mic: the server refused the virtual microphone ({error})") from None
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
        if self._pulse is not None:
            for index in reversed(self.modules):
                try:
                    self._pulse.module_unload(index)
                except Exception:  # already gone (the server restarted, or someone unloaded it)
                    pass
        self.modules.clear()
        self._disconnect()
        if self._lock is not None:
            os.close(self._lock)  # after the modules are gone: the next copy may start now
            self._lock = None

    def remove_leftovers(self) -> int:
        """Unload modules of this name left by a run that could not clean up (SIGKILL, a crash)."""
        ours = [m for m in self._pulse.module_list() if self.owns(m)]
        for module in sorted(ours, key=lambda m: -m.index):  # the source first, then its sink
            self._pulse.module_unload(module.index)
        return len(ours)

    def owns(self, module) -> bool:
        """Is this loaded module one of this virtual microphone's two (found by name)?"""
        return ((module.name == "module-null-sink" and _args_name(module.argument, "sink_name") == self.sink_name)
                or (module.name == "module-remap-source"
                    and _args_name(module.argument, "source_name") == self.name
                    and _args_name(module.argument, "master") == f"{self.sink_name}.monitor"))

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
        alive = {o.index for o in self._pulse.source_output_list()}
        moved = 0
        for index in streams:
            if source is not None and index in alive:
                try:
                    self._pulse.source_output_move(index, source.index)
                    moved += 1
                except Exception:  # the program ended meanwhile
                    pass
        return moved

    def default_source(self) -> str:
        return self._pulse.server_info().default_source_name or ""

    def is_own(self, source: str) -> bool:
        """Is ``source`` this virtual microphone, or the monitor of its sink (recording it would feed back)?"""
        return source in (self.name, f"{self.sink_name}.monitor")

    def route_output_here(self) -> None:
        """Make this process's PulseAudio playback (PortAudio's 'pulse' device) go into our sink."""
        os.environ["PULSE_SINK"] = self.sink_name


def project_modules(name: str = "rtdenoise") -> list[str]:
    """Names of the loaded modules that belong to a virtual microphone called ``name`` (for tests)."""
    pulsectl = import_pulsectl()
    mic = VirtualMic(name)
    with pulsectl.Pulse("rtdenoise-check") as pulse:
        return [f"{m.name} {m.argument}" for m in pulse.module_list() if mic.owns(m)]


RECOVER_SECONDS = 30.0  # a sound server that is not back (or refuses our modules) this long ends the session


class MicWatch:
    """Polled between blocks: the model sleeps (devices closed) while nobody records the virtual
    microphone, and wakes when someone does; a change of the default microphone is reported.

    A second connection listens to the server's events in a thread: when one of our modules or our
    sink goes away (someone unloads them, the server dies) the output is aborted at once, before the
    server can move our playback to the speakers, and :meth:`poll` recreates the virtual microphone
    when the server is back (``recoveries``), or ends the session after RECOVER_SECONDS.
    """

    def __init__(self, mic: VirtualMic, runner, report: Callable[[str], None], input_device=None) -> None:
        self.mic, self.runner, self.report = mic, runner, report
        self.listening: bool | None = None
        self.source = mic.default_source()
        # the microphone is the server's default one (no device named, no PULSE_SOURCE): that default can
        # become our own source when the only real microphone goes away
        self.follows_default = input_device in (None, "pulse", "default") and not os.environ.get("PULSE_SOURCE")
        self.recoveries = 0
        self.streams: list[int] = []  # the programs recording us at the last poll (moved back after a recovery)
        self.lost_since: float | None = None
        self.recovery_seconds: list[float] = []
        self._alarm = threading.Event()  # set by the listener: our modules or the server went away
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        self._start_listener()

    def close(self) -> None:
        """Stop listening (the session ends)."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(2.0)

    def poll(self) -> None:
        if self._alarm.is_set() or self.lost_since is not None or not self.mic.healthy():
            self._recover()
            return
        try:
            source = self.mic.default_source()
            self.streams = self.mic.listener_streams()
            listening = bool(self.streams)
        except Exception:  # pulsectl.PulseError: the server went away between two calls
            self._recover()
            return
        own = self.follows_default and self.mic.is_own(source)  # recording it would feed our output back
        if listening != self.listening:
            self.listening = listening
            state = "someone records it: denoising" if listening else "nobody records it: model idle"
            self.report(f"virtual microphone {self.mic.name!r}: {state}")
        if (not listening or own) and not self.runner.idle:
            self.runner.pause()
        elif listening and not own and self.runner.idle:
            self.runner.resume()
        if source != self.source:
            self.source = source
            if own:
                self.report(f"the default input is {source}, the virtual microphone itself (no real microphone?): "
                            "not recording it; waiting for a real one")
                return
            self.report(f"microphone is now {source} (the default input changed)")

    def _recover(self) -> None:
        """Our modules or the server are gone: devices closed, then the virtual microphone made again."""
        import time

        if not self.runner.idle:
            self.runner.pause(abort=True)
        now = time.monotonic()
        if self.lost_since is None:
            self.lost_since = now
            self.report(f"virtual microphone {self.mic.name!r} lost (the sound server restarted, or another program "
                        "unloaded its modules): recreating it")
        if self.mic.reconnect():
            took = now - self.lost_since
            self.recoveries += 1
            self.recovery_seconds.append(took)
            self.lost_since, self.listening = None, None
            self._alarm.clear()
            self.mic.route_output_here()
            moved = self.mic.take_back(self.streams)
            self.report(f"virtual microphone {self.mic.name!r} is back after {took:.1f} s"
                        + (f"; {moved} recording program(s) moved back to it" if moved else ""))
            self._start_listener()
        elif now - self.lost_since > RECOVER_SECONDS:
            raise RuntimeError(f"virtual microphone {self.mic.name!r}: the sound server did not come back within "
                               f"{RECOVER_SECONDS:.0f} s; ended")

    def _start_listener(self) -> None:
        if self._listener is not None and self._listener.is_alive():
            self._listener.join(2.0)
        self._listener = threading.Thread(target=self._listen, args=(set(self.mic.modules),), daemon=True,
                                          name="rtdenoise-virtual-mic-events")
        self._listener.start()

    def _listen(self, modules: set[int]) -> None:
        """The event thread: abort the output the moment one of ``modules`` (or our sink) is removed."""
        pulsectl = import_pulsectl()
        try:
            with pulsectl.Pulse("rtdenoise-virtual-mic-events") as pulse:
                sinks = {s.index for s in pulse.sink_list() if s.name == self.mic.sink_name}

                def on_event(event) -> None:
                    if event.t == "remove" and (event.facility == "module" and event.index in modules
                                                or event.facility == "sink" and event.index in sinks):
                        self._lost()
                        raise pulsectl.PulseLoopStop

                pulse.event_mask_set("module", "sink")
                pulse.event_callback_set(on_event)
                while not self._closing.is_set() and not self._alarm.is_set():
                    pulse.event_listen(timeout=0.2)
        except Exception:  # the connection broke: the server is gone
            if not self._closing.is_set():
                self._lost()

    def _lost(self) -> None:
        self._alarm.set()
        if not self.runner.idle:
            self.runner.pause(abort=True)  # before the server moves our playback to the speakers
