"""The QObject between the window and a LiveRunner: commands in, Qt signals out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from rtdenoise.errors import first_line
from rtdenoise.files.audio_io import AudioError
from rtdenoise.live.runner import DeviceError, LiveConfig, LiveRunner


ONNX_COMPUTE = "cpu (onnxruntime)"  # the compute choice that runs the exported graph (--backend onnx)


@dataclass
class SessionRequest:
    model: str | None            # shipped name or checkpoint path
    compute_device: str          # "cpu" / "cuda" / ONNX_COMPUTE
    input_file: Path | None      # None: microphone
    input_device: int | None
    output_device: int | None    # None with play=False: no speakers
    play: bool
    record_path: Path | None = None
    max_attenuation_db: float | None = None  # None: remove all the noise the model can
    gate_db: float | None = None             # voice gate threshold, dBFS (None: off)
    virtual_mic: str | None = None           # offer the cleaned microphone under this name (None: off)
    virtual_speaker: str | None = None       # offer NAME_speakers, cleaned onto the default output (None: off)


class Controller(QObject):
    """Owns at most one LiveRunner; its worker-thread events arrive here as signals."""

    started = Signal(str)
    stopped = Signal(str)
    error = Signal(str)
    notice = Signal(str)  # virtual microphone news for the status bar
    _event = Signal(int, str, str)  # (session, kind, text): from the worker thread, queued to the GUI thread

    def __init__(self) -> None:
        super().__init__()
        self.runner: LiveRunner | None = None
        self.mic = None    # the VirtualMic of this session
        self.watch = None  # its DeviceWatch, polled by poll()
        self.speakers = None         # the VirtualSpeaker of this session, its runner and its watch
        self.speaker_runner = None
        self.speaker_watch = None
        self._models: dict[tuple[str | None, str], object] = {}
        self._session = 0  # bumped by every stop: events still queued from an old runner are then ignored
        self._event.connect(self._deliver)

    def start(self, request: SessionRequest) -> bool:
        """Start a session; on failure emit ``error`` and return False (the app keeps running)."""
        self.stop()
        session = self._session
        try:
            model = self._model(request.model, request.compute_device)
            output, play = request.output_device, request.play
            if request.virtual_mic:
                if request.input_file is not None:
                    raise ValueError("the virtual microphone cleans a microphone: choose one as the source")
                from rtdenoise.live.pulse.virtual_mic import VirtualMic

                self.mic = VirtualMic(request.virtual_mic, microphone=str(request.input_device or "microphone"))
                self.mic.__enter__()
                output, play = "pulse", True  # PortAudio's PulseAudio device, into our sink (stream_env)
            config = LiveConfig(input_device=request.input_device, input_file=request.input_file,
                                output_device=output, play=play,
                                sample_rate=self.mic.live_rate(request.input_device) if self.mic is not None else None,
                                record_path=request.record_path, latency="high",
                                max_attenuation_db=request.max_attenuation_db, gate_db=request.gate_db,
                                ride_out_stalls=self.mic is not None,
                                stream_env=self.mic.stream_environment() if self.mic is not None else None,
                                pinned=self.mic.pinned if self.mic is not None else None)
            runner = LiveRunner(model, config, on_event=lambda kind, text: self._event.emit(session, kind, text))
            runner.start()
            if request.virtual_speaker:
                self._start_speakers(request, model, session)
        except (AudioError, DeviceError, ValueError, RuntimeError, OSError) as failure:
            if "runner" in locals():
                runner.stop()
            self._close_mic()
            self.error.emit(first_line(failure))
            return False
        self.runner = runner
        if self.mic is not None:
            from rtdenoise.live.pulse.device_watch import DeviceWatch

            self.watch = DeviceWatch(self.mic, runner, self.notice.emit, request.input_device)
        return True

    def _start_speakers(self, request: SessionRequest, model, session: int) -> None:
        """The other direction: what call apps play into NAME_speakers, cleaned onto the default output."""
        from rtdenoise.live.pulse.device_watch import DeviceWatch
        from rtdenoise.live.pulse.virtual_speaker import VirtualSpeaker

        self.speakers = VirtualSpeaker(request.virtual_speaker)
        self.speakers.__enter__()
        config = LiveConfig(input_device="pulse", output_device="pulse", channels=2, prime_ms=0, latency="high",
                            sample_rate=self.speakers.live_rate("pulse"),
                            max_attenuation_db=request.max_attenuation_db, ride_out_stalls=True,
                            stream_env=self.speakers.stream_environment(), pinned=self.speakers.pinned)
        self.speaker_runner = LiveRunner(model, config, on_event=lambda kind, text: self._event.emit(
            session, kind, f"speakers: {text}") if kind in ("notice", "error") else None)
        self.speaker_runner.start()
        self.speaker_watch = DeviceWatch(self.speakers, self.speaker_runner, self.notice.emit,
                                         sleep_when_unused=False)

    def poll(self) -> None:
        """From the GUI's timer: wake or rest the model as call apps start and stop recording."""
        for watch in (self.watch, self.speaker_watch):
            if watch is None or self.runner is None:
                continue
            try:
                watch.poll()
            except RuntimeError as failure:  # the sound server did not come back
                self.error.emit(first_line(failure))
                self.stop()

    def _close_mic(self) -> None:
        for watch in (self.watch, self.speaker_watch):
            if watch is not None:
                watch.close()
        self.watch = self.speaker_watch = None
        runner, self.speaker_runner = self.speaker_runner, None
        if runner is not None:
            runner.stop()
        speakers, self.speakers = self.speakers, None
        if speakers is not None:
            speakers.close()
        mic, self.mic = self.mic, None
        if mic is not None:
            mic.close()

    def stop(self) -> None:
        self._session += 1
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.stop()
        self._close_mic()

    def set_bypass(self, on: bool) -> None:
        for runner in (self.runner, self.speaker_runner):
            if runner is not None:
                runner.set_bypass(on)

    def set_max_attenuation(self, db: float | None) -> None:
        for runner in (self.runner, self.speaker_runner):
            if runner is not None:
                runner.set_max_attenuation(db)

    def _model(self, name: str | None, device: str):
        from rtdenoise.engine import load_model  # torch stays out of app/ imports

        key = (name, device)
        if key not in self._models:
            self._models[key] = load_model(name, "cpu", "onnx")[0] if device == ONNX_COMPUTE \
                else load_model(name, device)[0]
        return self._models[key]

    def _deliver(self, session: int, kind: str, text: str) -> None:  # GUI thread
        if session != self._session:
            return  # from a session already stopped or replaced
        if kind == "started":
            self.started.emit(text)
        elif kind == "error":
            self.error.emit(text)
        elif kind == "notice":  # a stall ridden out
            self.notice.emit(text)
        elif kind == "finished":  # the file ended or the device failed: release it, so Start starts again
            self.stopped.emit(text)
            self.stop()
