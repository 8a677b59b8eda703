"""Echo removal for the virtual microphone: the sound server's WebRTC echo canceller between the real
microphone and the real speakers (``module-echo-cancel`` on PulseAudio, the same name on pipewire-pulse).

It makes a source ``NAME_echo_cancelled`` (the microphone less what the speakers played into it), which
the live path records, and a sink ``NAME_echo_reference`` in front of the real speakers: what plays
through it is the far end the canceller removes. The virtual speakers play into it; without them it is
made the default output for the session (the previous default comes back on exit), so call apps play
through it. The canceller's own gain control and noise suppression are off: the microphone's volume is
left alone and the denoiser does the rest. The canceller runs in mono (the live path records one
channel): in stereo PipeWire's raised the local voice by 2.6 dB.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .virtual_mic import module_argument, import_pulsectl

CANCELLER_ARGS = "analog_gain_control=0 digital_gain_control=0 noise_suppression=0 extended_filter=1"
# pipewire-pulse passes aec_args to PipeWire's own canceller, whose switches have other names (and whose noise
# suppression and voice detection are on unless turned off; without the latter it removed 2-3 dB more echo)
PIPEWIRE_CANCELLER_ARGS = ("webrtc.gain_control=false webrtc.noise_suppression=false webrtc.extended_filter=true "
                           "webrtc.high_pass_filter=false webrtc.voice_detection=false webrtc.delay_agnostic=true")


@dataclass
class EchoCanceller:
    """``with EchoCanceller("rtdenoise", microphone, speakers):`` holds the canceller; leaving removes it."""

    name: str = "rtdenoise"
    microphone: str | None = None   # the real source (None: PULSE_SOURCE, else the server's default)
    speakers: str | None = None     # the real sink (None: the server's default)
    make_default: bool = True       # route call apps' sound through the reference sink while it runs
    modules: list[int] = field(default_factory=list)

    @property
    def source_name(self) -> str:
        return f"{self.name}_echo_cancelled"

    @property
    def sink_name(self) -> str:
        return f"{self.name}_echo_reference"

    def __post_init__(self) -> None:
        self._pulse = None
        self._previous_default: str | None = None

    def __enter__(self) -> "EchoCanceller":
        try:
            return self._set_up()
        except ValueError:
            raise
        except Exception as error:  # pulsectl.PulseError: the server failed or went away while we set up
            self.close()
            raise ValueError(f"--echo-cancel: the sound server failed ({type(error).__name__}: {error})") from None

    def _set_up(self) -> "EchoCanceller":
        pulsectl = import_pulsectl()
        try:
            self._pulse = pulsectl.Pulse("rtdenoise-echo-cancel")
        except Exception as error:
            raise ValueError(f"--echo-cancel: no PulseAudio/PipeWire server to talk to ({error})") from None
        pulse = self._pulse
        for module in pulse.module_list():  # left by a run that could not clean up
            if module.name == "module-echo-cancel" and module_argument(module.argument, "source_name") == self.source_name:
                pulse.module_unload(module.index)
        info = pulse.server_info()
        microphone = self.microphone or os.environ.get("PULSE_SOURCE") or info.default_source_name
        speakers = self.speakers or info.default_sink_name
        if not microphone or not speakers:
            self.close()
            raise ValueError("--echo-cancel: the server has no default microphone or speakers to work between")
        pipewire = "pipewire" in (info.server_name or "").lower()
        arguments = (f"source_master={microphone} sink_master={speakers} aec_method=webrtc "
                     f"source_name={self.source_name} sink_name={self.sink_name} channels=1 "
                     f"aec_args=\"{PIPEWIRE_CANCELLER_ARGS if pipewire else CANCELLER_ARGS}\"")
        try:
            self.modules.append(pulse.module_load("module-echo-cancel", arguments))
        except Exception as error:
            self.close()
            raise ValueError(f"--echo-cancel: the server refused its echo canceller ({error})") from None
        after = pulse.server_info()
        if after.default_source_name != info.default_source_name and info.default_source_name:
            pulse.source_default_set(info.default_source_name)  # the raw microphone stays the default input
        self._previous_default = info.default_sink_name
        if self.make_default:
            self._retry(lambda: pulse.sink_default_set(self.sink_name))
        elif after.default_sink_name != info.default_sink_name and info.default_sink_name:
            pulse.sink_default_set(info.default_sink_name)
        self.microphone, self.speakers = microphone, speakers
        return self

    @staticmethod
    def _retry(action, tries: int = 40) -> None:
        """PipeWire makes a loaded module's nodes a moment later: an operation on them may fail at first."""
        import time

        for attempt in range(tries):
            try:
                return action()
            except Exception:
                if attempt == tries - 1:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Put the default output back and unload the canceller (idempotent)."""
        if self._pulse is None:
            return
        try:
            if self.make_default and self._previous_default and \
                    self._pulse.server_info().default_sink_name == self.sink_name:
                self._pulse.sink_default_set(self._previous_default)
        except Exception:  # the server went away
            pass
        for index in reversed(self.modules):
            try:
                self._pulse.module_unload(index)
            except Exception:
                pass
        self.modules.clear()
        try:
            self._pulse.close()
        except Exception:
            pass
        self._pulse = None
