"""The streaming engine: any block size in, the model run chunk by chunk out.

It adds what models must not know: resampling to the model's rate, a pending
buffer so blocks need not be hop multiples, channels as batch, priming, the
offline latency trim (output n lines up with input n), device placement and
per-chunk timing. No Qt, no PortAudio here.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from rtdenoise.kernels import FixedShapeStep, GraphedStep, NumpyBandStep, NumpyFIRStep, NumpyGRUStep
from rtdenoise.models import GRUDenoiser, MimoCNN, StreamingModel, load_checkpoint, resolve_model_path
from rtdenoise.models.bands import BandDenoiser

from .gate import GateSettings, VoiceGate
from .high_band import GAIN_EXPONENT as HIGH_BAND_EXPONENT
from .high_band import HighBand, wants_high_band
from .resample import StreamResampler, check_sample_rate
from .silence import SilenceKeeper


INPUT_LIMIT = 4.0      # +12 dBFS: float samples beyond this are clipped before the model (and counted)
OUTPUT_MARGIN = 2.0    # +6 dB: no output sample exceeds twice the input's recent peak
PEAK_HOLD_SECONDS = 1.0  # the input's peak is held and decays with this time constant
SILENCE_PEAK = 1e-4    # the guard's floor, so a near-silent input may still yield its own faint output
def as_float_audio(block: np.ndarray) -> np.ndarray:
    """Float32 audio from any numeric block: integer PCM is scaled to [-1, 1) as soundfile reads it."""
    block = np.asarray(block)
    if block.dtype == np.float32:
        return block
    if block.dtype.kind == "i":
        return (block / float(2 ** (8 * block.dtype.itemsize - 1))).astype(np.float32)
    if block.dtype.kind == "u":
        half = float(2 ** (8 * block.dtype.itemsize - 1))
        return ((block - half) / half).astype(np.float32)
    if block.dtype.kind == "f":
        return block.astype(np.float32)
    raise ValueError(f"audio blocks must be float or integer PCM, got {block.dtype}")


def channel_peaks(audio: np.ndarray) -> np.ndarray:
    """``(C, 1)`` peak magnitude of each channel of ``(C, n)`` audio (NaN if any sample is NaN)."""
    return np.maximum.reduce(np.abs(audio), axis=1, keepdims=True)


def dry_gain_for(max_attenuation_db: float | None) -> float:
    """The input's share ``a = 10 ** (-dB / 20)`` in the attenuation limit's mix (0: no limit)."""
    if max_attenuation_db is None:
        return 0.0
    if not 0 < max_attenuation_db < float("inf"):
        raise ValueError(f"--max-attenuation must be a positive number of dB, got {max_attenuation_db:g}")
    return float(10 ** (-max_attenuation_db / 20))


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; other names are taken as given."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but no CUDA GPU is available")
    return device


BACKENDS = ("torch", "onnx")


def load_model(name_or_path: str | None = None, device: str | torch.device | None = "auto", backend: str = "torch"):
    """Load a shipped model by name (default: the best one), a checkpoint file or an exported ``.onnx`` file.

    ``backend``: ``torch`` (the network in torch, with the numpy kernels on the CPU and CUDA graphs on a
    GPU) or ``onnx`` (the exported graph in onnxruntime, on the CPU; a checkpoint is exported in memory
    first). An ``.onnx`` file always runs on onnxruntime.

    Returns:
        ``(model, checkpoint)``: the model in eval mode on ``device``, and the
        checkpoint dict (spec, training summary, metrics).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    path = resolve_model_path(name_or_path)
    if backend == "onnx" or path.suffix.lower() == ".onnx":
        if device not in (None, "auto") and torch.device(device).type != "cpu":
            raise ValueError(f"the onnx backend runs on the CPU, not {device}: use --device cpu or --backend torch")
        from rtdenoise.portable import load_onnx_model

        return load_onnx_model(str(path))
    model, checkpoint = load_checkpoint(path)
    return model.to(pick_device(device) if not isinstance(device, torch.device) else device), checkpoint


class StreamingDenoiser:
    """Runs one model over one multi-channel stream, block by block.

    Args:
        model: a :class:`StreamingModel` (already on its device).
        channels: channels of the stream; they are processed as a batch.
        sample_rate: rate of the stream; resampled to the model's rate and back.
        chunk_samples: model-rate samples per ``step`` (a multiple of ``hop``);
            default: one hop.
        compensate_latency: offline mode: drop the model's latency so output
            sample n lines up with input sample n, and make ``flush`` return
            exactly as many samples as went in.
        coalesce: run all complete chunks of a block in one ``step`` call
            (same output, fewer calls; for offline work).
        fast_path: run one-chunk steps through a fixed-shape kernel where one
            exists: on CUDA a captured CUDA graph (far fewer kernel launches); on
            the CPU numpy kernels for a small MIMO CNN and for the STFT GRU (which
            also runs the coalesced blocks of offline work). Same maths as ``model.step``.
        max_attenuation_db: remove at most this much: the output is
            ``(1 - a) * enhanced + a * input`` with ``a = 10 ** (-dB / 20)``, the input
            delayed to line up with the model's output (None: no limit).
        keep_high_band: at 32 kHz and above, keep the band above the model's Nyquist and denoise
            it with the model's own top-octave gain (see :mod:`rtdenoise.engine.high_band`); False:
            resample to the model's rate and back, deleting that band.
        gate_db: a voice gate after the denoiser (see :mod:`rtdenoise.engine.gate`): silence where the cleaned
            level stays below this many dBFS, words kept whole; adds its look-back (60 ms) to the latency.
        output_guard: hold every output sample within OUTPUT_MARGIN times the input's
            recent peak (a safety limiter against broken models and hostile input; on in
            every client, off only where a test compares the engine's arithmetic with ``forward``).
    """

    max_timings = 100_000  # per-chunk times kept in ``chunk_seconds`` (the older half is dropped)

    def __init__(
        self,
        model: StreamingModel,
        channels: int = 1,
        sample_rate: int | None = None,
        chunk_samples: int | None = None,
        compensate_latency: bool = False,
        coalesce: bool = False,
        fast_path: bool = True,
        max_attenuation_db: float | None = None,
        output_guard: bool = True,
        keep_high_band: bool = True,
        gate_db: float | None = None,
    ) -> None:
        self.model = model
        self.output_guard = output_guard
        self.keep_high_band = keep_high_band
        self.gate_settings = GateSettings(threshold_db=gate_db) if gate_db is not None else None
        self.channels = channels
        self.sample_rate = check_sample_rate(sample_rate or model.sample_rate)
        self.chunk_samples = chunk_samples or model.hop
        if self.chunk_samples % model.hop:
            raise ValueError(f"chunk of {self.chunk_samples} samples is not a multiple of hop {model.hop}")
        self.compensate_latency = compensate_latency
        self.coalesce = coalesce
        self.device = next(model.parameters(), torch.empty(0)).device  # an ONNX model has no torch weights: CPU
        self._fast: FixedShapeStep | None = None
        self._fast_kind = _fast_kind(model, self.device, self.chunk_samples) if fast_path else None
        self.set_max_attenuation(max_attenuation_db)
        self.reset()

    def set_max_attenuation(self, db: float | None) -> None:
        """Limit how much the denoiser removes (None: no limit); may change mid-stream."""
        self._dry_gain = dry_gain_for(db)
        self.max_attenuation_db = db

    def reset(self) -> None:
        """Forget the stream: fresh state, empty buffers, zeroed counters."""
        rate = self.model.sample_rate
        self.state = self.model.init_state(self.channels, self.device)
        self.pending = np.zeros((self.channels, 0), np.float32)
        self._dry = np.zeros((self.channels, self.model.latency_samples), np.float32)  # input not yet in the output
        self.to_model = StreamResampler(self.sample_rate, rate, self.channels)
        self.from_model = StreamResampler(rate, self.sample_rate, self.channels)
        self.frames_in = 0
        self.frames_out = 0
        self.model_frames_in = 0
        self.nonfinite_samples = 0
        self.clipped_samples = 0     # input beyond ±INPUT_LIMIT, clipped before the model
        self.limited_samples = 0     # output held to OUTPUT_MARGIN times the input's peak
        self.state_resets = 0        # carried state went non-finite: started afresh
        self._silence = SilenceKeeper(self.model.hop, self.model.latency_samples, rate)
        self._input_peak = np.zeros((self.channels, 1), np.float32)  # held input peak, per channel
        self._peak_decay: dict[int, np.float32] = {}  # the held peak's decay over a chunk of n samples
        self._model_discard = self.model.latency_samples if self.compensate_latency else 0
        self._discard = 0
        self.chunk_seconds: list[float] = []
        self.gate = VoiceGate(self.sample_rate, self.channels, self.gate_settings) if self.gate_settings else None
        self._gate_discard = self.gate.delay if self.gate is not None and self.compensate_latency else 0
        self.high_band = None  # above the model's band at 32 kHz and up: kept and denoised (high_band.py)
        self._step_gains: list[np.ndarray] = []
        if self.keep_high_band and wants_high_band(self.sample_rate, rate):
            delay = 0 if self.compensate_latency else round(self.model.latency_samples * self.sample_rate / rate)
            self.high_band = HighBand(self.sample_rate, rate, self.channels, self.model.hop if self.model.hop > 1
                                      else rate // 100, delay,
                                      getattr(self.model, "high_band_exponent", HIGH_BAND_EXPONENT))

    @property
    def delay_samples(self) -> int:
        """Live mode: how many samples (at the stream's rate) the output trails the input by."""
        model = round(self.model.latency_samples * self.sample_rate / self.model.sample_rate)
        return model + (self.gate.delay if self.gate is not None else 0)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of the live path (model latency + one chunk, + the gate's look-back)."""
        gate = 1000.0 * self.gate.delay / self.sample_rate if self.gate is not None else 0.0
        return 1000.0 * (self.model.latency_samples + self.chunk_samples) / self.model.sample_rate + gate

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed ``(frames, channels)`` float audio; returns enhanced ``(frames', channels)``."""
        block = self._sanitise(block)
        self.frames_in += block.shape[0]
        at_model_rate = self.to_model.process(block.T)
        if self.high_band is not None:
            self.high_band.feed(block.T, at_model_rate)
        return self._deliver(self._run_model(at_model_rate))

    def flush(self) -> np.ndarray:
        """End of stream: pad with silence and return what is still inside.

        In offline mode the total output then equals the total input in length.
        """
        tail = self.to_model.flush()
        model_frames = self.model_frames_in + tail.shape[1]
        needed = model_frames + self.model.latency_samples if self.compensate_latency else model_frames
        pad = needed - model_frames
        pad += (-(self.pending.shape[1] + tail.shape[1] + pad)) % self.model.hop
        if self.high_band is not None:
            self.high_band.flush(tail)
        tail = np.concatenate([tail, np.zeros((self.channels, pad), np.float32)], axis=1)
        out = self._run_model(tail, final=True)
        gains = self._take_gains(out.shape[1])
        first = self.from_model.next_out
        out = np.concatenate([self.from_model.process(out), self.from_model.flush()], axis=1)
        if self.high_band is not None:
            out = self.high_band.mix(out, gains, first)
        out = self._apply_discard(out)
        if self.gate is not None:  # its delay line holds the last look-back of audio: push it out
            tail = np.zeros((self.channels, self.gate.delay), np.float32)
            out = np.concatenate([self._gated(out), self._gated(tail)], axis=1)
        if self.compensate_latency:
            missing = self.frames_in - self.frames_out - out.shape[1]
            if missing > 0:
                out = np.concatenate([out, np.zeros((self.channels, missing), np.float32)], axis=1)
            out = out[:, : max(0, self.frames_in - self.frames_out)]
        self.frames_out += out.shape[1]
        return np.ascontiguousarray(out.T)

    def prime(self, block: np.ndarray) -> None:
        """Run preceding audio to build up the state; its output is dropped.

        The next output sample then corresponds to the first sample after
        ``block``, as if the stream had started there.
        """
        frames = block.shape[0]
        produced = self.process(block).shape[0]
        self._discard += frames - produced
        self.frames_in -= frames
        self.frames_out -= produced

    def warm_up(self, block: np.ndarray) -> None:
        """Build up the model's memory on ``block``, then start the stream afresh with it.

        Unlike :meth:`prime`, the stream's timeline restarts: use it to play a
        file from its start with a state that has already heard its opening.
        """
        self.process(block)
        memory = self.model.memory_only(self.state)
        self.reset()
        self.state = memory

    # -- internals -------------------------------------------------------------------
    def _sanitise(self, block: np.ndarray) -> np.ndarray:
        block = as_float_audio(block)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ValueError(f"block has {block.shape[1]} channels, stream has {self.channels}")
        if not block.size or np.maximum.reduce(np.abs(block), axis=None) <= INPUT_LIMIT:  # common case; NaN fails it
            return block
        finite = np.isfinite(block)
        if not finite.all():  # NaN/Inf must never reach the carried state
            self.nonfinite_samples += int(block.size - finite.sum())
            block = np.where(finite, block, 0.0).astype(np.float32)
        loud = np.abs(block) > INPUT_LIMIT
        if loud.any():  # finite but absurd (1e20): it would overflow the model's features and state
            self.clipped_samples += int(loud.sum())
            block = np.clip(block, -INPUT_LIMIT, INPUT_LIMIT)
        return block

    def _run_model(self, samples: np.ndarray, final: bool = False) -> np.ndarray:
        self.model_frames_in += samples.shape[1]
        size = self.chunk_samples
        if not final and not self.pending.shape[1] and samples.shape[1] == size and not self._model_discard:
            with torch.inference_mode():  # the live path's common case: exactly one chunk
                return self._step(samples)
        pending = np.concatenate([self.pending, samples], axis=1) if self.pending.size else samples
        usable = pending.shape[1] - pending.shape[1] % (self.model.hop if final else size)
        outputs = []
        step = usable if self.coalesce or final else size
        with torch.inference_mode():
            for start in range(0, usable, max(step, 1)):
                stop = min(start + step, usable)
                outputs.append(self._step(pending[:, start:stop]))
        self.pending = pending[:, usable:]
        out = (outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)) if outputs \
            else np.zeros((self.channels, 0), np.float32)
        if self._model_discard:
            dropped = min(self._model_discard, out.shape[1])
            out = out[:, dropped:]
            self._model_discard -= dropped
            if self._step_gains:
                gains = np.concatenate(self._step_gains, axis=1)
                self._step_gains = [gains[:, dropped:]]
        return out

    def _take_gains(self, count: int) -> np.ndarray | None:
        """The high band's gains for the last ``count`` model-rate output samples (None without a high band)."""
        if self.high_band is None:
            return None
        gains = np.concatenate(self._step_gains, axis=1) if self._step_gains else \
            np.zeros((self.channels, 0), np.float32)
        self._step_gains = []
        return gains[:, gains.shape[1] - count:] if count else gains[:, :0]

    def _step(self, chunk: np.ndarray) -> np.ndarray:
        """One model step (through the fixed-shape kernel when the chunk fits it), timed, with the dry mix."""
        started = time.perf_counter()
        dry = np.concatenate([self._dry, chunk], axis=1) if self._dry.shape[1] else chunk
        self._dry = dry[:, chunk.shape[1]:]
        dry = dry[:, : chunk.shape[1]]
        result = self._silence.run(chunk, self)
        if self._dry_gain:
            result = (1.0 - self._dry_gain) * result + self._dry_gain * dry
        result = self._guard(result, dry, chunk)
        if self.high_band is not None:
            self._step_gains.append(self.high_band.gains(result, dry))
        self.chunk_seconds.append(time.perf_counter() - started)
        if len(self.chunk_seconds) > self.max_timings:  # a long live session must not grow without end
            del self.chunk_seconds[: self.max_timings // 2]
        return result

    def step_model(self, chunk: np.ndarray) -> np.ndarray:
        """One ``model.step`` (through the fixed-shape kernel when the chunk fits it)."""
        if self._fast_kind and self._fits_fast(chunk.shape[1]):
            return self._fast_step(chunk)
        tensor = torch.from_numpy(np.ascontiguousarray(chunk))
        if self.device.type != "cpu":
            tensor = tensor.to(self.device, non_blocking=True)
        enhanced, self.state = self.model.step(tensor, self.state)
        return enhanced.numpy() if enhanced.device.type == "cpu" else enhanced.float().cpu().numpy()

    def _guard(self, result: np.ndarray, dry: np.ndarray, chunk: np.ndarray) -> np.ndarray:
        """Output safety: finite, and never louder than OUTPUT_MARGIN times the input it came from.

        A non-finite output means the carried state is broken (a damaged checkpoint, a kernel
        fault): the stream starts afresh with a clean state, counted in ``state_resets``.
        The common case costs one reduction per array (NaN and Inf in a peak fail every test).
        """
        if not result.shape[1]:
            return result
        result_peak = channel_peaks(result)
        if not math.isfinite(np.maximum.reduce(result_peak, axis=None)):
            self.state_resets += 1
            self.state = self.model.init_state(self.channels, self.device)
            result, result_peak = np.zeros_like(result), np.zeros_like(result_peak)
        if not self.output_guard:
            return result
        decay = self._peak_decay.get(chunk.shape[1])
        if decay is None:
            decay = self._peak_decay[chunk.shape[1]] = np.float32(
                np.exp(-chunk.shape[1] / (PEAK_HOLD_SECONDS * self.model.sample_rate)))
        peak = channel_peaks(chunk)
        if dry.shape[1]:
            np.maximum(peak, channel_peaks(dry), out=peak)
        self._input_peak = np.maximum(peak, self._input_peak * decay)
        limit = OUTPUT_MARGIN * np.maximum(self._input_peak, np.float32(SILENCE_PEAK))
        if np.maximum.reduce(result_peak - limit, axis=None) > 0:
            self.limited_samples += int((np.abs(result) > limit).sum())
            result = np.clip(result, -limit, limit)
        return result

    def _fits_fast(self, samples: int) -> bool:
        """True when the fast kernel runs a chunk of ``samples``: its own size, or any whole hops if it can."""
        return samples == self.chunk_samples or (
            self._fast_kind.any_hop_multiple and samples > 0 and samples % self.model.hop == 0)

    def _fast_step(self, chunk: np.ndarray) -> np.ndarray:
        """One chunk through the fixed-shape kernel; its own state tensors become the carried state."""
        if self._fast is None:
            self._fast = self._fast_kind(self.model, self.state, self.channels, self.chunk_samples)
        if self.state is not self._fast.state:  # after reset, warm_up or an eager step
            self._fast.load_state(self.state)
            self.state = self._fast.state
        return self._fast(chunk)

    def _deliver(self, model_out: np.ndarray) -> np.ndarray:
        first = self.from_model.next_out
        low = self.from_model.process(model_out)
        if self.high_band is not None:
            low = self.high_band.mix(low, self._take_gains(model_out.shape[1]), first)
        out = self._apply_discard(low)
        if self.gate is not None:
            out = self._gated(out)
        self.frames_out += out.shape[1]
        return np.ascontiguousarray(out.T)

    def _gated(self, out: np.ndarray) -> np.ndarray:
        """Through the voice gate; offline, its look-back is dropped so output n still lines up with input n."""
        out = self.gate.process(out)
        if self._gate_discard:
            dropped = min(self._gate_discard, out.shape[1])
            self._gate_discard -= dropped
            out = out[:, dropped:]
        return out

    def _apply_discard(self, out: np.ndarray) -> np.ndarray:
        if self._discard:
            dropped = min(self._discard, out.shape[1])
            self._discard -= dropped
            out = out[:, dropped:]
        return out


def _fast_kind(model: StreamingModel, device: torch.device, chunk_samples: int):
    """The fixed-shape kernel class for ``model`` on ``device``, or None (eager steps)."""
    if device.type == "cuda":
        return GraphedStep
    if device.type == "cpu" and isinstance(model, MimoCNN) and NumpyFIRStep.suits(model, chunk_samples):
        return NumpyFIRStep
    if device.type == "cpu" and isinstance(model, GRUDenoiser) and NumpyGRUStep.suits(model, chunk_samples):
        return NumpyGRUStep
    if device.type == "cpu" and isinstance(model, BandDenoiser) and NumpyBandStep.suits(model, chunk_samples):
        return NumpyBandStep
    return None


def available_compute_devices() -> list[str]:
    """``["cpu"]`` plus ``"cuda"`` when a GPU is usable."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
