"""Live denoising: a source, the engine on a worker thread, a sink.

The PortAudio callbacks only copy into and out of preallocated rings and count
xruns; one worker thread runs the engine with the carried state. sounddevice is
imported lazily, so files work where PortAudio is missing. No Qt here: the GUI
polls :attr:`LiveRunner.noisy_history` / ``clean_history`` and :meth:`stats`.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rtdenoise.engine import StreamingDenoiser
from rtdenoise.engine.resample import check_sample_rate
from rtdenoise.errors import first_line
from rtdenoise.files.audio_io import AudioInfo, FileSink, output_format, probe, read_blocks
from rtdenoise.files.offline import chunk_samples_for
from rtdenoise.models import StreamingModel

from .ringbuffer import AudioRing, HistoryRing


STALL_SECONDS = 2.0  # no input callback (or, playing a file, no output callback) for this long: the device is gone
REOPEN_SECONDS = 1.0  # riding out stalls: how often the devices are reopened while they stay silent
MAX_BACKLOG_BLOCKS = 4  # more input than this waiting (a stall, a slow machine): drop it and catch up ...
# ... unless the input device's own buffer is longer: with a long --latency it delivers its blocks in bursts (the
# ALSA PulseAudio plugin: a quarter of its latency at once), which are no stall
PREFILL_BLOCKS = 3  # silence the output starts with (at least), so callback jitter does not underflow it
# An output device that stops taking audio for a while and then takes it again (a PulseAudio null sink rendering a
# 2 s block just as our stream joins it, a server hiccup) leaves what the worker made meanwhile queued: played late
# for good. More queued than the cushion, one device buffer, one input burst and MAX_BACKLOG_BLOCKS is skipped.
LEVEL_SECONDS = 0.3  # the meters' time constant: mean square smoothed over about this long


STREAM_ENVIRONMENT = threading.Lock()  # one session at a time opens streams under its own PULSE_* variables
# PipeWire: a stream with this property dies with its device instead of being moved to the default one
DONT_RECONNECT = "node.dont-reconnect='true'"


def _set_environment(values: dict) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextmanager
def _pinned_environment(pinned: bool):
    """libpulse's PULSE_PROP with :data:`DONT_RECONNECT` added while a pinned stream opens (the caller holds
    STREAM_ENVIRONMENT); the user's own properties are kept."""
    before = os.environ.get("PULSE_PROP")
    if pinned:
        os.environ["PULSE_PROP"] = f"{before} {DONT_RECONNECT}" if before else DONT_RECONNECT
    try:
        yield
    finally:
        _set_environment({"PULSE_PROP": before})


class DeviceError(RuntimeError):
    """An audio device that cannot open, vanished or stalled."""


def import_sounddevice():
    """sounddevice, or a DeviceError that says how to get PortAudio."""
    try:
        import sounddevice
    except OSError as error:
        raise DeviceError(f"no audio devices: PortAudio is missing ({error}); apt-get install libportaudio2") from None
    return sounddevice


def list_devices() -> tuple[list[dict], list[dict], str]:
    """(input devices, output devices, reason when there are none)."""
    sd = import_sounddevice()  # a missing PortAudio is an error, not an empty list
    try:
        devices = [dict(d, index=i) for i, d in enumerate(sd.query_devices())]
    except Exception as error:  # PortAudio can fail in many ways
        return [], [], first_line(error)
    inputs = [d for d in devices if d["max_input_channels"] > 0]
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    return inputs, outputs, "" if inputs or outputs else "PortAudio found no audio devices"


DEFAULT_RATE = 48000  # when a device cannot say its own rate


def native_rate(device) -> int:
    """The input device's own sample rate (what PulseAudio/PipeWire and call apps run at), or 48 kHz."""
    try:
        rate = import_sounddevice().query_devices(device, "input")["default_samplerate"]
        return check_sample_rate(int(rate))
    except Exception:  # no PortAudio or no such device: opening the stream will say so properly
        return DEFAULT_RATE


def device_failure(kind: str, device, reason: str) -> str:
    """What a device that failed to open means, and what to do next, in one line."""
    name = f"{kind} device {device}" if device is not None else f"the default {kind} device"
    if "querying device -1" in reason:  # PortAudio's way of saying there is no default device
        what = f"no {kind} device found"
    else:
        what = f"{name} failed to open ({reason})"
    hint = ("see rtdenoise live --list-devices and pick one with --output N, or use --no-output"
            if kind == "output" else
            "see rtdenoise live --list-devices and pick one with --input N, or play a file with --file")
    return f"{what}; {hint}"


def device_arg(text: str | None) -> int | str | None:
    """Device as `python -m sounddevice` shows it: an index or a name substring."""
    if text in (None, "", "default"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def latency_arg(text: str) -> str | float:
    """PortAudio's latency hint: ``low``, ``high`` or seconds (0 or more)."""
    if text in ("low", "high"):
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"--latency must be low, high or seconds (0 or more), got {text!r}")
    return seconds


@dataclass
class LiveConfig:
    input_device: int | str | None = None   # microphone (used when input_file is None)
    input_file: Path | None = None          # play a file through the live path instead
    output_device: int | str | None = None  # speakers
    play: bool = True                       # False: no output device (file sources paced by a clock)
    sample_rate: int | None = None          # None: the microphone's own rate (48 kHz on most desktops)
    channels: int = 1
    chunk_ms: float | None = None
    prime_ms: float = 500.0                 # run this much of the source first to build up the state
    record_path: Path | None = None         # save the cleaned output while it plays
    record_input_path: Path | None = None   # save the raw input too
    history_seconds: float = 5.0
    latency: str | float = "low"            # PortAudio latency hint
    max_attenuation_db: float | None = None  # remove at most this much (None: no limit)
    gate_db: float | None = None            # voice gate threshold in dBFS (None: off)
    ride_out_stalls: bool = False           # a stalled microphone is reopened until it delivers again (the
                                            # virtual microphone); False: a stall ends the session
    stream_env: dict | None = None          # PULSE_SOURCE / PULSE_SINK (None: unset) while this session's streams
                                            # open: libpulse reads them then (two sessions in one process, e.g. the
                                            # virtual microphone and the virtual speakers, each with its own)
    pinned: str | None = None               # "input" or "output": the stream tied to a virtual device of ours,
                                            # which must die with it rather than be moved by PipeWire to the
                                            # default device (the cleaned microphone on the speakers)

    def __post_init__(self) -> None:
        if self.sample_rate is not None:
            try:
                check_sample_rate(self.sample_rate)
            except ValueError as error:
                raise ValueError(f"--rate: {error}") from None
        if self.channels <= 0:
            raise ValueError(f"the channel count must be positive, got {self.channels}")
        if self.prime_ms < 0:
            raise ValueError(f"--prime-ms must be 0 or more, got {self.prime_ms:g}")
        if self.history_seconds <= 0:
            raise ValueError(f"the plotted history must be positive, got {self.history_seconds:g} s")
        latency_arg(str(self.latency))  # raises on anything PortAudio would refuse mid-start
        if self.pinned not in (None, "input", "output"):
            raise ValueError(f"pinned must be 'input', 'output' or None, got {self.pinned!r}")
        if self.gate_db is not None:
            from rtdenoise.engine.gate import GateSettings, VoiceGate

            VoiceGate(16000, 1, GateSettings(threshold_db=self.gate_db))  # a bad level: one line now
        records = [Path(p).resolve() for p in (self.record_path, self.record_input_path) if p is not None]
        if self.input_file is not None and Path(self.input_file).resolve() in records:
            raise ValueError(f"{self.input_file}: is the input file; refusing to record over it "
                             f"(choose another name)")
        if len(records) == 2 and records[0] == records[1]:
            raise ValueError(f"{self.record_path}: the cleaned and the raw recording would be the same file")


class LiveRunner:
    """Runs one live session; :meth:`start`, :meth:`stop`, :meth:`set_bypass`, :meth:`stats`.

    ``on_event(kind, text)`` is called from the worker thread with kinds
    ``"started"``, ``"error"``, ``"finished"``.
    """

    def __init__(self, model: StreamingModel, config: LiveConfig,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.model = model
        self.config = config
        self.on_event = on_event or (lambda kind, text: None)
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.bypass = False
        self.idle = False
        self._prefill = True  # the output's first block (and the first after a resume) follows silence
        # output frames still to go before an empty output counts as an underflow: the device takes its first
        # fill at once after the streams open, before and just after the first block (infinite until it comes)
        self._unsettled_frames = float("inf")
        self.error: str | None = None
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: list = []
        self._devices = threading.RLock()  # opening and closing streams: the worker (stalls) and the caller (pause)
        self.stalls = 0            # stalls ridden out (ride_out_stalls): the devices were reopened
        self.stalled_since: float | None = None
        self.last_output_time = 0.0
        rate = config.sample_rate
        if config.input_file is None and rate is None:
            rate = native_rate(config.input_device)
        if config.input_file is not None:
            info = probe(config.input_file)
            self.file_info = info
            rate, self.channels = info.sample_rate, info.channels
        else:
            self.file_info = None
            self.channels = config.channels
        self.sample_rate = rate
        self.chunk_samples = chunk_samples_for(model, config.chunk_ms)
        self.block_frames = max(1, round(self.chunk_samples * rate / model.sample_rate))
        self.engine = StreamingDenoiser(model, self.channels, rate, self.chunk_samples,
                                        max_attenuation_db=config.max_attenuation_db, gate_db=config.gate_db)
        # The cleaned recording drops the model's latency, so it lines up with the input (and with
        # the offline command's output); what is played cannot wait for that and keeps it.
        self._record_delay = self.engine.delay_samples
        self._record_skip = self._record_delay  # still to drop from the start of the cleaned recording
        # two seconds, or room for four device buffers of a longer --latency (its bursts, its prefill)
        capacity = int(rate * max(2.0, 4 * config.latency if isinstance(config.latency, (int, float)) else 0.0))
        self.in_ring = AudioRing(capacity, self.channels)
        self.out_ring = AudioRing(capacity, self.channels)
        history = int(config.history_seconds * rate)
        self.noisy_history = HistoryRing(history)
        self.clean_history = HistoryRing(history)
        self.input_overflows = 0
        self.output_underflows = 0
        self.backlog_frames = MAX_BACKLOG_BLOCKS * self.block_frames  # input waiting beyond this is dropped
        self.prefill_frames = PREFILL_BLOCKS * self.block_frames  # silence the output starts with
        self.output_latency_frames = 0  # the output device's buffer, as it says when opened
        self.dropped_frames = 0  # input skipped to catch up after falling behind (bounded latency)
        self.catch_ups = 0
        self.skipped_output_frames = 0  # output skipped after the output device fell behind (bounded latency)
        self.output_skips = 0
        self.last_input_time = 0.0
        self.frames_processed = 0
        self.source_done = False  # a file source has ended: an emptying output is no underflow
        self._recent: deque = deque(maxlen=4096)  # (wall time, chunk seconds, audio seconds)
        self._recorders: list[FileSink] = []
        self.levels = (0.0, 0.0)  # RMS of the noisy input and the output, smoothed over LEVEL_SECONDS
        self._mean_squares = (0.0, 0.0)

    # -- control (any thread) -------------------------------------------------------
    def start(self) -> None:
        """Open devices and start the worker; raises DeviceError/AudioError on failure."""
        self._open_recorders()
        try:
            self._open_streams()
        except Exception:
            self._close_recorders(keep=False)
            raise
        self._thread = threading.Thread(target=self._run, name="rtdenoise-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Streams first, then the worker (flag + join); recordings are kept."""
        self._stop.set()
        self._close_streams()
        if self._thread is not None:
            self._thread.join(timeout)
        self.finished.wait(timeout)

    def set_bypass(self, on: bool) -> None:
        self.commands.put(("bypass", bool(on)))

    def pause(self, abort: bool = False) -> None:
        """Close the devices and let the worker sleep (a virtual microphone nobody records: no CPU).
        ``abort``: drop what the output still holds instead of playing it out (its sink vanished)."""
        self.idle = True
        self._close_streams(abort)

    def resume(self) -> None:
        """Reopen the devices after :meth:`pause`; the model starts with fresh memory."""
        for ring in (self.in_ring, self.out_ring):
            ring.read(ring.available)
        self.engine.reset()
        self._prefill = True
        self._open_streams()
        self.idle = False

    def set_max_attenuation(self, db: float | None) -> None:
        """Change the attenuation limit mid-stream (None: no limit); applied by the worker."""
        self.commands.put(("max_attenuation", db))

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def stats(self) -> dict:
        """Real-time factor of the last second (worker CPU time / audio time), chunk times, xruns, latency."""
        now = time.monotonic()
        recent = [r for r in list(self._recent) if now - r[0] <= 1.0]
        work = sum(r[1] for r in recent)
        audio = sum(r[2] for r in recent)
        times = sorted(r[1] for r in recent) or [0.0]
        return {
            "rtf": work / audio if audio else 0.0,
            "chunk_ms": 1000.0 * self.chunk_samples / self.model.sample_rate,
            "chunk_p99_ms": 1000.0 * times[min(len(times) - 1, int(0.99 * len(times)))],
            "latency_ms": self.engine.latency_ms,
            "device_latency_ms": 1000.0 * sum(getattr(s, "latency", 0.0) or 0.0 for s in list(self._streams)),
            "cushion_ms": 1000.0 * self.prefill_frames / self.sample_rate if self.config.play else 0.0,
            "input_overflows": self.input_overflows + self.in_ring.dropped,
            "output_underflows": self.output_underflows,
            "dropped_ms": 1000.0 * (self.dropped_frames + self.skipped_output_frames) / self.sample_rate,
            "catch_ups": self.catch_ups + self.output_skips,
            "output_skipped_ms": 1000.0 * self.skipped_output_frames / self.sample_rate,
            "stalls": self.stalls,
            "stalled": self.stalled_since is not None,
            "queued_ms": 1000.0 * (self.in_ring.available + self.out_ring.available) / self.sample_rate,
            "seconds": self.frames_processed / self.sample_rate,
            "bypass": self.bypass,
            "idle": self.idle,
            "repaired": {"nonfinite_samples": self.engine.nonfinite_samples,
                         "clipped_samples": self.engine.clipped_samples,
                         "limited_samples": self.engine.limited_samples,
                         "state_resets": self.engine.state_resets},
        }

    # -- devices ----------------------------------------------------------------------
    def _open_streams(self) -> None:
        with self._devices, STREAM_ENVIRONMENT:
            saved = {key: os.environ.get(key) for key in self.config.stream_env or {}}
            _set_environment(self.config.stream_env or {})
            try:
                self._open_streams_locked()
            finally:
                _set_environment(saved)

    def _open_streams_locked(self) -> None:
        cfg = self.config
        if self.file_info is None or cfg.play:
            sd = import_sounddevice()
        kind = "input"
        try:
            if self.file_info is None:
                with _pinned_environment(cfg.pinned == "input"):
                    stream = sd.InputStream(device=cfg.input_device, channels=self.channels,
                                            samplerate=self.sample_rate, blocksize=self.block_frames,
                                            dtype="float32", latency=cfg.latency, callback=self._input_callback)
                self._streams.append(stream)
            kind = "output"
            if cfg.play:
                with _pinned_environment(cfg.pinned == "output"):
                    stream = sd.OutputStream(device=cfg.output_device, channels=self.channels,
                                             samplerate=self.sample_rate, blocksize=self.block_frames,
                                             dtype="float32", latency=cfg.latency, callback=self._output_callback)
                self._streams.append(stream)
            self._unsettled_frames = float("inf")  # until the first block: the device's first fill
            for stream in self._streams:
                stream.start()
            if self.file_info is None:
                self.backlog_frames = max(MAX_BACKLOG_BLOCKS * self.block_frames,
                                          round((self._streams[0].latency or 0.0) * self.sample_rate))
            if cfg.play:  # the output device takes its buffer in parts too, while the input's come in parts
                self.output_latency_frames = round((self._streams[-1].latency or 0.0) * self.sample_rate)
                self.prefill_frames = max(PREFILL_BLOCKS * self.block_frames, self.output_latency_frames // 2)
            self.last_input_time = self.last_output_time = time.monotonic()  # opening may take seconds: the
                                                                              # stall clocks start now
        except Exception as error:
            self._close_streams()
            raise DeviceError(device_failure(kind, cfg.input_device if kind == "input" else cfg.output_device,
                                             first_line(error))) from None

    def _close_streams(self, abort: bool = False) -> None:
        with self._devices:
            streams, self._streams = self._streams, []
            for stream in streams:
                try:
                    stream.abort() if abort else stream.stop()
                    stream.close()
                except Exception:  # a vanished device may refuse to stop; nothing left to save there
                    pass

    def _input_callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.input_overflows += 1
        self.in_ring.write(indata)
        self.last_input_time = time.monotonic()

    def _output_callback(self, outdata, frames, time_info, status) -> None:
        self.last_output_time = time.monotonic()
        # not underflows: the device's first fill after the streams open (start-up silence, measured on PipeWire:
        # 3-12 empty callbacks before and just after the first block), and once the worker has stopped (the last
        # callbacks before the close find nothing)
        counted = self._unsettled_frames <= 0 and not self._stop.is_set()
        self._unsettled_frames -= frames
        if status.output_underflow and counted:
            self.output_underflows += 1
        if self.file_info is None:
            self._skip_late_output()
        if self.out_ring.read_into(outdata) and counted and not self.source_done:
            self.output_underflows += 1

    def _skip_late_output(self) -> None:
        """Bounded latency on the output side (the output callback, the ring's reader): more queued than the
        output can hold in normal running is skipped down to the cushion the session started with."""
        bound = self.prefill_frames + self.output_latency_frames + self.backlog_frames \
            + MAX_BACKLOG_BLOCKS * self.block_frames
        if self.out_ring.available > bound:
            self.skipped_output_frames += self.out_ring.skip(self.out_ring.available - self.prefill_frames)
            self.output_skips += 1

    # -- recording --------------------------------------------------------------------
    def _open_recorders(self) -> None:
        for path in (self.config.record_path, self.config.record_input_path):
            if path is not None:  # 16-bit WAV unless the extension names another format
                wav = AudioInfo(Path(path), self.sample_rate, self.channels, 0, "WAV", "PCM_16")
                fmt, subtype = output_format(Path(path), wav)
                self._recorders.append(FileSink(path, self.sample_rate, self.channels, fmt, subtype))
            else:
                self._recorders.append(None)

    def _record_clean(self, out: np.ndarray, total: int | None = None) -> None:
        """Write cleaned audio to its recording, lined up with the input (the latency dropped), at most
        ``total`` frames in all."""
        sink = self._recorders[0] if self._recorders else None
        if sink is None:
            return
        if self._record_skip:
            dropped = min(self._record_skip, len(out))
            out, self._record_skip = out[dropped:], self._record_skip - dropped
        if total is not None:
            out = out[: max(0, total - sink.frames)]
        sink.write(out)

    def _close_recorders(self, keep: bool = True) -> None:
        for sink in self._recorders:
            if sink is not None:
                try:
                    sink.commit() if keep and sink.frames else sink.discard()
                except Exception:  # a recording that cannot be finished (disk full) leaves no partial file
                    sink.discard()
        self._recorders = []

    # -- the worker -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.file_info is not None:
                self._run_file()
            else:
                self._run_microphone()
        except Exception as error:  # report, keep the recordings, end cleanly
            self.error = first_line(error)
            self.on_event("error", self.error)
        finally:
            self._close_streams()
            self._close_recorders(keep=True)
            self.finished.set()
            self.on_event("finished", "error" if self.error else "done")

    def _drain_commands(self) -> None:
        while True:
            try:
                name, value = self.commands.get_nowait()
            except queue.Empty:
                return
            if name == "bypass":
                self.bypass = value
            elif name == "max_attenuation":
                self.engine.set_max_attenuation(value)

    def _process(self, block: np.ndarray) -> None:
        self._drain_commands()
        if self._prefill and self.config.play:
            self._prefill = False
            # Pre-fill the output with the latency budget in silence, so callback jitter
            # between the input and output streams does not underflow.
            self.out_ring.write(np.zeros((self.prefill_frames, self.channels), np.float32))
            self._unsettled_frames = self.prefill_frames + 2 * self.output_latency_frames
        # Thread CPU time: what the engine costs, not the time spent waiting for the GIL.
        started = time.thread_time()
        enhanced = self.engine.process(block)
        elapsed = time.thread_time() - started
        out = block if self.bypass else enhanced
        self.out_ring.write(out)
        self._record_clean(out)
        if len(self._recorders) > 1 and self._recorders[1] is not None:
            self._recorders[1].write(block)
        self.noisy_history.write(block.mean(axis=1))
        self.clean_history.write(out.mean(axis=1) if len(out) else out[:, :1])
        self._update_levels(block, out)
        self.frames_processed += len(block)
        self._recent.append((time.monotonic(), elapsed, len(block) / self.sample_rate))

    def _update_levels(self, noisy: np.ndarray, clean: np.ndarray) -> None:
        """RMS levels for the meters, both smoothed alike so that they compare (not one 10 ms chunk)."""
        keep = float(np.exp(-len(noisy) / self.sample_rate / LEVEL_SECONDS))
        squares = [float(np.mean(np.square(x, dtype=np.float64))) if len(x) else None for x in (noisy, clean)]
        self._mean_squares = tuple(old if new is None else keep * old + (1.0 - keep) * new
                                   for old, new in zip(self._mean_squares, squares))
        self.levels = tuple(float(np.sqrt(x)) for x in self._mean_squares)

    def _run_microphone(self) -> None:
        prime_frames = int(self.config.prime_ms / 1000 * self.sample_rate)
        self.on_event("started", "microphone")
        start = time.monotonic()
        while not self._stop.is_set():
            if self.idle:  # paused: no devices, nothing to wait for but a resume or the end
                self._stop.wait(0.1)
                continue
            if self.in_ring.available < self.block_frames:
                reference = self.last_input_time or start
                if time.monotonic() - reference > STALL_SECONDS:
                    if not self.config.ride_out_stalls:
                        raise DeviceError(f"input device {self.config.input_device or 'default'} stopped delivering "
                                          f"audio (unplugged or stalled); recording kept")
                    self._reopen_after_stall()
                time.sleep(0.001)
                continue
            if self.stalled_since is not None:
                self.stalled_since = None
                self.on_event("notice", "the input delivers again")
            self._catch_up()
            block = self.in_ring.read(self.block_frames)
            if prime_frames > 0:  # the first stretch builds up the state
                if len(self._recorders) > 1 and self._recorders[1] is not None:
                    self._recorders[1].write(block)  # the raw recording keeps everything heard
                self.engine.prime(block)
                prime_frames -= len(block)
                continue
            self._process(block)

    def _reopen_after_stall(self) -> None:
        """The input went silent (a sound server stalled or restarting): reopen the devices, once a
        REOPEN_SECONDS, until it delivers again; counted in ``stalls``."""
        now = time.monotonic()
        if self.stalled_since is None:
            self.stalled_since = now
            self.stalls += 1
            self.on_event("notice", f"the input stalled: reopening it (stall {self.stalls})")
        with self._devices:
            if self.idle or self._stop.is_set():
                return
            self._close_streams(abort=True)
            for ring in (self.in_ring, self.out_ring):
                ring.read(ring.available)
            try:
                self._open_streams()
                self._prefill = True
            except DeviceError:
                pass  # still gone: the next try after REOPEN_SECONDS
            self.last_input_time = now + REOPEN_SECONDS - STALL_SECONDS

    def _catch_up(self) -> None:
        """Bounded latency: when more than ``backlog_frames`` of input wait (MAX_BACKLOG_BLOCKS, or the input
        device's own latency when that is longer), skip all but the newest block.

        Processing them late would add their length to every later sample's delay, for good
        (the output plays in real time). The skipped audio still goes to the raw recording.
        """
        backlog = self.in_ring.available - self.block_frames
        if backlog <= self.backlog_frames:
            return
        skipped = self.in_ring.read(backlog)
        if len(self._recorders) > 1 and self._recorders[1] is not None:
            self._recorders[1].write(skipped)
        self.dropped_frames += backlog
        self.catch_ups += 1

    def _check_output(self) -> None:
        """Playing a file: an output device that stopped taking audio (its sound server died) ends the session."""
        if time.monotonic() - (self.last_output_time or time.monotonic()) > STALL_SECONDS:
            raise DeviceError(f"output device {self.config.output_device or 'default'} stopped taking audio "
                              "(unplugged, or its sound server ended); recording kept")

    def _run_file(self) -> None:
        info = self.file_info
        prime_frames = int(self.config.prime_ms / 1000 * self.sample_rate)
        if prime_frames:
            first = next(read_blocks(info, prime_frames))
            self.engine.warm_up(first)  # memory built on the opening, then play from the start
        self.on_event("started", str(info.path))
        period = self.block_frames / self.sample_rate
        target_fill = 4 * self.block_frames
        next_time = time.monotonic()
        for block in read_blocks(info, self.block_frames):
            if self._stop.is_set():
                return
            if self.config.play:  # paced by the output device's consumption
                while self.out_ring.available > target_fill and not self._stop.is_set():
                    self._check_output()
                    time.sleep(period / 4)
            else:  # paced by the clock
                next_time += period
                delay = next_time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._process(block)
        latency_tail = self.engine.process(np.zeros((self._record_delay, self.channels), np.float32))
        tail = np.concatenate([latency_tail, self.engine.flush()])  # the file's last samples, still inside
        self.source_done = True
        self.out_ring.write(tail)
        self._record_clean(tail, total=info.frames)
        deadline = time.monotonic() + 2.0
        while self.config.play and self.out_ring.available and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.01)
