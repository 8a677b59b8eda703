"""Keeps a virtual device (microphone or speakers) and its live runner in step with the sound server.

The model sleeps while nobody uses the device; the device is recreated when the server restarts or
someone unloads it, with the output aborted first (see :class:`DeviceWatch`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..runner import DeviceError
from .virtual_mic import import_pulsectl

RECOVER_SECONDS = 30.0  # a sound server that is not back (or refuses our modules) this long ends the session
MOVED_AWAY_SECONDS = 2.0  # programs that recorded us this shortly before the loss were moved off by it: taken back
# a listener gone for less than this is not gone: PipeWire relinks a stream that follows the default device
# (it lists it on no device for a few ms), and sleeping the model then would close the devices and reset it
LISTENER_GONE_SECONDS = 0.5


class DeviceWatch:
    """Polled between blocks: the model sleeps (devices closed) while nobody uses the virtual device
    (records the microphone, plays into the speakers), and wakes when someone does; a change of the
    default device it feeds from is reported.

    A second connection listens to the server's events in a thread: when one of our modules or our
    sink goes away (someone unloads them, the server dies) the output is aborted at once, before the
    server can move our playback to the speakers, and :meth:`poll` recreates the virtual device
    when the server is back (``recoveries``), or ends the session after RECOVER_SECONDS.
    """

    def __init__(self, mic, runner, report: Callable[[str], None], input_device=None,
                 sleep_when_unused: bool = True) -> None:
        self.mic, self.runner, self.report = mic, runner, report
        # the speakers must not sleep: what a call app plays while the devices reopen (a second or two) would be lost
        self.sleep_when_unused = sleep_when_unused
        self.listening: bool | None = None
        self.unheard_since: float | None = None  # when the last listener was last missed (None: one is there)
        self.source = mic.default_device()
        # it feeds from the server's default device (none named, no PULSE_SOURCE for the microphone): that default
        # can become our own device when the only real one goes away, or a user picks ours
        self.follows_default = mic.follows_default(input_device)
        self.recoveries = 0
        self.streams: list[int] = []  # the programs recording us when last seen (moved back after a recovery) ...
        self.streams_seen: float | None = None  # ... and when that was: the server may move them off before the loss
        self.lost_since: float | None = None
        self.recovery_seconds: list[float] = []
        self._alarm = threading.Event()  # set by the listener: our modules or the server went away
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        self._start_listener()
        if not runner.idle:  # the runner opened its streams: ours just joined the sink (someone may record already)
            mic.restart_sink_clock()

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
            source = self.mic.default_device()
            streams = self.mic.listener_streams()
        except Exception:  # pulsectl.PulseError: the server went away between two calls
            self._recover()
            return
        now = time.monotonic()
        if streams:
            self.streams, self.streams_seen = streams, now
        own = self.follows_default and self.mic.is_own(source)  # recording it would feed our output back
        if source != self.source:  # said first: pausing the devices below may take a moment
            self.source = source
            self.report(self.mic.own_default_message(source) if own else self.mic.new_default_message(source))
        listening = self._listening(bool(streams), now)
        if listening != self.listening:
            self.listening = listening
            self.report(f"{self.mic.label}: {self.mic.usage_message(listening)}")
        wanted = (listening or not self.sleep_when_unused) and not own
        if not wanted and not self.runner.idle:
            # nobody hears what the output still holds, and draining it into a sink nobody records (which the
            # server may suspend) can block the watch
            self.runner.pause(abort=True)
        elif wanted and self.runner.idle:
            try:
                self.runner.resume()
                self.mic.restart_sink_clock()  # else our output may wait up to 2 s to be taken (see there)
            except DeviceError:
                if self.mic.healthy():
                    raise
                self._recover()  # our sink went away while the streams opened: recreated, not the session's end

    def _listening(self, heard: bool, now: float) -> bool:
        """Does anyone use the virtual device? A listener missed for less than LISTENER_GONE_SECONDS still does."""
        if heard:
            self.unheard_since = None
            return True
        if self.unheard_since is None:
            self.unheard_since = now
        return bool(self.listening) and now - self.unheard_since < LISTENER_GONE_SECONDS

    def _recover(self) -> None:
        """Our modules or the server are gone: devices closed, then the virtual device made again."""
        if not self.runner.idle:
            self.runner.pause(abort=True)
        now = time.monotonic()
        if self.lost_since is None:
            self.lost_since = now
            self.report(f"{self.mic.label} lost (the sound server restarted, or another program unloaded its "
                        "modules): recreating it")
        if self.mic.reconnect():
            took = now - self.lost_since
            self.recoveries += 1
            self.recovery_seconds.append(took)
            recent = self.streams_seen is not None and self.lost_since - self.streams_seen <= MOVED_AWAY_SECONDS
            self.lost_since, self.listening = None, None
            self._alarm.clear()
            moved = self.mic.take_back(self.streams if recent else [])
            self.report(f"{self.mic.label} is back after {took:.1f} s"
                        + (f"; {moved} program(s) moved back to it" if moved else ""))
            self._start_listener()
        elif now - self.lost_since > RECOVER_SECONDS:
            raise RuntimeError(f"{self.mic.label}: the sound server did not come back within "
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
