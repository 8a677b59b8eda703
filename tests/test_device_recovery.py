"""The virtual devices' recovery logic without a sound server: our sink vanishing while the streams open, and
the PipeWire property that keeps our stream from being moved onto another device."""
from __future__ import annotations

import os

import pytest

from rtdenoise.live import runner as live_runner
from rtdenoise.live.pulse.device_watch import DeviceWatch
from rtdenoise.live.runner import DeviceError, LiveConfig


class FakeMic:
    """A virtual microphone whose modules someone unloads while the streams open."""

    label, sink_name, modules = "virtual microphone 'test'", "test_denoised_sink", [1, 2]

    def __init__(self) -> None:
        self.loaded, self.reconnects = True, 0

    def default_device(self) -> str:
        return "mic"

    def follows_default(self, input_device) -> bool:
        return False

    def listener_streams(self) -> list[int]:
        return [7]  # a call app records us: the model must wake

    def is_own(self, device: str) -> bool:
        return False

    def usage_message(self, used: bool) -> str:
        return "someone records it" if used else "nobody records it"

    def healthy(self) -> bool:
        return self.loaded

    def reconnect(self) -> bool:
        self.reconnects += 1
        self.loaded = True
        return True

    def take_back(self, streams: list[int]) -> int:
        return len(streams)

    def restart_sink_clock(self) -> None:
        pass


class FailingRunner:
    """Opening the streams fails the way PortAudio does when the sink is gone; ``mic`` loses its modules then."""

    def __init__(self, mic: FakeMic, unload: bool) -> None:
        self.mic, self.unload, self.idle = mic, unload, True

    def resume(self) -> None:
        if self.unload:
            self.mic.loaded = False
        raise DeviceError("output device pulse failed to open (Unable to create stream: No such entity)")

    def pause(self, abort: bool = False) -> None:
        self.idle = True


@pytest.fixture
def quiet_watch(monkeypatch):
    monkeypatch.setattr(DeviceWatch, "_start_listener", lambda self: None)  # no server to listen to


def test_a_sink_that_vanishes_while_the_streams_open_is_recreated_not_the_end(quiet_watch):
    mic, said = FakeMic(), []
    watch = DeviceWatch(mic, FailingRunner(mic, unload=True), said.append)
    watch.poll()
    assert mic.reconnects == 1 and watch.recoveries == 1, said
    assert any("is back after" in line for line in said), said


def test_a_device_that_fails_while_our_sink_is_there_still_ends_the_session(quiet_watch):
    mic = FakeMic()
    watch = DeviceWatch(mic, FailingRunner(mic, unload=False), lambda text: None)
    with pytest.raises(DeviceError, match="failed to open"):
        watch.poll()
    assert mic.reconnects == 0


@pytest.mark.parametrize("user_props", [None, "media.role='phone'"])
def test_only_the_pinned_stream_opens_with_dont_reconnect_and_the_users_properties_stay(monkeypatch, user_props):
    if user_props is None:
        monkeypatch.delenv("PULSE_PROP", raising=False)
    else:
        monkeypatch.setenv("PULSE_PROP", user_props)
    with live_runner._pinned_environment(True):
        pinned = os.environ["PULSE_PROP"]
    with live_runner._pinned_environment(False):
        unpinned = os.environ.get("PULSE_PROP")
    assert live_runner.DONT_RECONNECT in pinned and (user_props is None or user_props in pinned)
    assert unpinned == user_props and os.environ.get("PULSE_PROP") == user_props


def test_a_pinned_direction_must_be_input_or_output():
    with pytest.raises(ValueError, match="pinned"):
        LiveConfig(pinned="speakers")


class LaggingServer:
    """A sound server that, as PipeWire did in CI, lags behind its module calls: it lists an unloaded module's sink
    for ``lag_calls`` more listings, refuses a sink of that name ``refusals`` times meanwhile, and lists a newly
    loaded sink only from the ``lag_calls``-th listing on."""

    def __init__(self, sink_name: str, lag_calls: int, refusals: int = 0) -> None:
        from types import SimpleNamespace

        self.sink_name, self.lag_calls, self.refusals = sink_name, lag_calls, refusals
        self.modules = [SimpleNamespace(index=5, name="module-null-sink", argument=f"sink_name={sink_name} "
                                        "sink_properties='device.description=\"test speakers (denoised)\"'")]
        self.listed_in = 0  # listings until the sink is (un)listed

    def module_list(self):
        return self.modules

    def module_unload(self, index: int) -> None:
        self.modules = [m for m in self.modules if m.index != index]
        self.listed_in = self.lag_calls

    def module_load(self, name: str, arguments: str) -> int:
        from types import SimpleNamespace

        if self.refusals > 0:
            self.refusals -= 1
            raise RuntimeError("Failed to load module")
        self.modules.append(SimpleNamespace(index=6, name=name, argument=arguments))
        self.listed_in = self.lag_calls
        return 6

    def server_info(self):
        from types import SimpleNamespace

        return SimpleNamespace(default_sink_name="speakers", default_source_name="mic")

    def sink_list(self):
        from types import SimpleNamespace

        self.listed_in -= 1
        loaded = bool(self.modules)
        return [SimpleNamespace(name=self.sink_name)] if loaded != (self.listed_in >= 0) else []


def _speakers_on(server_lag: int, refusals: int = 0, settle: float = 0.5, monkeypatch=None):
    from rtdenoise.live.pulse import virtual_mic
    from rtdenoise.live.pulse.virtual_speaker import VirtualSpeaker

    monkeypatch.setattr(virtual_mic, "SETTLE_SECONDS", settle)
    speakers = VirtualSpeaker("test")
    speakers._pulse = LaggingServer(speakers.sink_name, server_lag, refusals)
    return speakers


@pytest.mark.parametrize("lag_calls, refused", [(3, False), (10**6, True)])
def test_a_killed_runs_leftovers_still_listed_for_a_moment_are_not_taken_for_another_programs(lag_calls, refused,
                                                                                              monkeypatch):
    speakers = _speakers_on(lag_calls, monkeypatch=monkeypatch)
    assert speakers.remove_leftovers() == 1
    if refused:  # still there after the wait: somebody else's sink of our name
        with pytest.raises(ValueError, match="not ours"):
            speakers._refuse_taken_name()
    else:
        speakers._refuse_taken_name()


@pytest.mark.parametrize("refusals, recreated", [(5, True), (10**6, False)])
def test_a_lost_device_is_recreated_although_the_server_refuses_its_name_for_a_moment(refusals, recreated,
                                                                                      monkeypatch):
    import pulsectl

    speakers = _speakers_on(3, refusals, settle=2.0 if recreated else 0.5, monkeypatch=monkeypatch)
    server = speakers._pulse
    server.module_unload(5)  # someone else unloads ours
    monkeypatch.setattr(pulsectl, "Pulse", lambda name: server)
    if recreated:
        assert speakers.reconnect() and speakers.modules == [6]
        assert speakers._devices_listed() == [True]  # the new sink is listed before the streams open on it
    else:  # a server that keeps refusing: the session's end, with the server's reason
        with pytest.raises(ValueError, match="refused the virtual speakers"):
            speakers.reconnect()


class RelinkingMic(FakeMic):
    """A virtual microphone whose listeners and default device the test sets, poll by poll."""

    def __init__(self) -> None:
        super().__init__()
        self.streams, self.default = [7], "mic"

    def default_device(self) -> str:
        return self.default

    def follows_default(self, input_device) -> bool:
        return True

    def listener_streams(self) -> list[int]:
        return self.streams

    def is_own(self, device: str) -> bool:
        return device == "test"

    def own_default_message(self, device: str) -> str:
        return f"the default input is {device}, ours"

    @staticmethod
    def new_default_message(device: str) -> str:
        return f"microphone is now {device}"


class CountingRunner:
    """A runner that counts its pauses and resumes, and notes what the watch had said when it paused."""

    def __init__(self, said: list[str]) -> None:
        self.said, self.idle, self.pauses, self.resumes, self.said_at_pause = said, True, 0, 0, []

    def pause(self, abort: bool = False) -> None:
        self.idle, self.pauses = True, self.pauses + 1
        self.said_at_pause.append(list(self.said))

    def resume(self) -> None:
        self.idle, self.resumes = False, self.resumes + 1


def _watch_with_clock(monkeypatch):
    from rtdenoise.live.pulse import device_watch

    clock = [100.0]
    monkeypatch.setattr(device_watch.time, "monotonic", lambda: clock[0])
    mic, said = RelinkingMic(), []
    runner = CountingRunner(said)
    return DeviceWatch(mic, runner, said.append), mic, runner, said, clock


def test_a_listener_missing_for_a_moment_keeps_the_model_awake_and_one_gone_puts_it_to_sleep(quiet_watch,
                                                                                              monkeypatch):
    from rtdenoise.live.pulse.device_watch import LISTENER_GONE_SECONDS

    watch, mic, runner, said, clock = _watch_with_clock(monkeypatch)
    watch.poll()
    assert runner.resumes == 1 and not runner.idle
    mic.streams = []  # PipeWire relinks the recording app: on no device for a moment
    clock[0] += 0.25
    watch.poll()
    mic.streams = [7]
    clock[0] += 0.25
    watch.poll()
    assert runner.pauses == 0 and runner.resumes == 1 and said == ["virtual microphone 'test': someone records it"]
    mic.streams = []  # the app stops recording
    for _ in range(int(LISTENER_GONE_SECONDS / 0.25) + 1):
        clock[0] += 0.25
        watch.poll()
    assert runner.pauses == 1 and said[-1] == "virtual microphone 'test': nobody records it"


def test_the_default_becoming_our_own_device_is_said_before_the_devices_close(quiet_watch, monkeypatch):
    watch, mic, runner, said, clock = _watch_with_clock(monkeypatch)
    watch.poll()
    mic.default = "test"
    clock[0] += 0.25
    watch.poll()
    assert runner.pauses == 1 and runner.said_at_pause[0][-1] == "the default input is test, ours"
    mic.default = "mic"
    clock[0] += 0.25
    watch.poll()
    assert runner.resumes == 2 and said[-1] == "microphone is now mic"
