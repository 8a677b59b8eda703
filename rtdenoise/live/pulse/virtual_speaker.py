"""Denoised speakers: a virtual output device ("rtdenoise speakers") that call apps play into; the live
path records its monitor, denoises it (stereo in, stereo out) and plays it on the real speakers, the
server's default output, followed when it changes (never our own device)."""
from __future__ import annotations

import os

from .virtual_mic import VirtualMic, module_argument, move_streams


class VirtualSpeaker(VirtualMic):
    """``with VirtualSpeaker("rtdenoise"):`` holds the null sink ``rtdenoise_speakers``; leaving removes it."""

    option = "--virtual-speaker"
    what = "virtual speakers"
    pinned = "input"  # our recording of the monitor dies with it, never moved onto the microphone

    @property
    def sink_name(self) -> str:
        return f"{self.name}_speakers"

    @property
    def label(self) -> str:
        return f"{self.what} {self.sink_name!r}"

    @property
    def monitor(self) -> str:
        return f"{self.sink_name}.monitor"

    @property
    def description(self) -> str:
        return f"{self.name} speakers (denoised)"

    def _module_specs(self) -> list[tuple[str, str]]:
        return [("module-null-sink", f"sink_name={self.sink_name} channels=2 "
                 f"sink_properties='device.description=\"{self.description}\"'")]

    def _devices_listed(self) -> list[bool]:
        return [any(sink.name == self.sink_name for sink in self._pulse.sink_list())]

    def _refuse_taken_name(self) -> None:
        if self._name_taken():
            raise ValueError(f"--name {self.name!r}: the sound server already has a sink called {self.sink_name} "
                             "(not ours); pick another --name")

    def owns(self, module) -> bool:
        """Ours: a null sink of our name with our description (another program's sink of that name is not)."""
        return (module.name == "module-null-sink" and module_argument(module.argument, "sink_name") == self.sink_name
                and self.description in (module.argument or ""))

    def listener_streams(self) -> list[int]:
        """The playback streams (sink inputs) of other programs playing into the virtual speakers."""
        sink = next((s for s in self._pulse.sink_list() if s.name == self.sink_name), None)
        if sink is None:
            return []
        me = str(os.getpid())
        return [i.index for i in self._pulse.sink_input_list()
                if i.sink == sink.index and i.proplist.get("application.process.id") != me]

    def restart_sink_clock(self) -> None:
        """Nothing: other programs play into this sink (suspending it would cut them off), and our stream
        records its monitor rather than joining it."""

    def take_back(self, streams: list[int]) -> int:
        sink = next((s for s in self._pulse.sink_list() if s.name == self.sink_name), None)
        return move_streams(streams, {i.index for i in self._pulse.sink_input_list()}, sink,
                            self._pulse.sink_input_move)

    def default_device(self) -> str:
        return self._pulse.server_info().default_sink_name or ""

    def follows_default(self, output_device) -> bool:
        return True  # the denoised sound goes to the default output

    def is_own(self, device: str) -> bool:
        return device in (self.sink_name, self.monitor)

    @staticmethod
    def usage_message(used: bool) -> str:
        return "something plays into them" if used else "nothing plays into them"

    def own_default_message(self, device: str) -> str:
        return (f"the default output is {device}, the virtual speakers themselves: not playing into them (that would "
                "loop); waiting for real speakers")

    @staticmethod
    def new_default_message(device: str) -> str:
        return f"speakers are now {device} (the default output changed)"

    def stream_environment(self) -> dict[str, str | None]:
        """What the live path's PulseAudio streams open with: record our monitor, play to the default output."""
        return {"PULSE_SOURCE": self.monitor, "PULSE_SINK": None}
