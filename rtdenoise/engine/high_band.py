"""The band above the model's Nyquist (8-24 kHz at 48 kHz), kept and denoised, for any model.

A 16 kHz model sees only 0-8 kHz. Resampling to it and back deletes the rest:
sibilants, breath and "air". As WebRTC's noise suppressor treats its upper band,
the engine splits the stream with a complementary crossover and drives the upper
band with the model's own gain in its top octave:

* low band = the input taken down to the model's rate and back up (the same
  zero-phase resampler as the model path), high band = input − low band, so the
  two add up to the input exactly;
* each hop, the gain the model applied to 4-8 kHz (energy out / energy in,
  ≤ 1), raised to ``GAIN_EXPONENT``, is ramped sample by sample over the hop's
  first half and read at the time each output sample sits at (the resamplers
  are zero-phase); the stream's first two hops stay at gain 0 (the model's
  output is still filling in), so nothing clicks above the model's band;
* output = the model's low band + that gain × the high band, delayed to line up.

No extra algorithmic latency: the high band waits in a buffer for the model's
output. Streaming equals offline for any block size, as the rest of the engine.
"""
from __future__ import annotations

import numpy as np

from .resample import StreamResampler

MIN_RATE_FOR_HIGH_BAND = 32000  # below this, nothing changes (the band above 8 kHz is small or absent)
GAIN_FROM_HZ = 4000.0          # the model's top octave, whose gain drives the high band
SILENT_BAND = 1e-10            # input energy (per hop) below which the gain is left where it was
GAIN_EXPONENT = 0.8            # the high band's gain is the top octave's raised to this (keeps more speech),
                               # unless the model sets its own (high_band_exponent)
RAMP_FRACTION = 0.5            # each hop's gain is reached this far into the hop, ramped from the last one's
SILENT_START_HOPS = 2          # the stream's first hops (the model's output filling in): nothing above its band


def wants_high_band(stream_rate: int, model_rate: int) -> bool:
    return stream_rate >= MIN_RATE_FOR_HIGH_BAND and stream_rate > model_rate


class HighBand:
    """Crossover, gain and alignment for the band a model cannot see; see the module docstring."""

    def __init__(self, stream_rate: int, model_rate: int, channels: int, hop: int, delay: int,
                 exponent: float = GAIN_EXPONENT) -> None:
        self.lowpass = StreamResampler(model_rate, stream_rate, channels)
        self.up, self.down = self.lowpass.up, self.lowpass.down   # stream / model rate, reduced
        self.gain_history = np.ones((channels, 0), np.float32)   # model-rate gains from absolute index gain_start
        self.gain_start = 0
        self.raw = np.zeros((channels, 0), np.float32)        # input not yet matched by the low band
        self.high = np.zeros((channels, delay), np.float32)   # high band waiting for the model's output
        self.hop = hop
        self.exponent = exponent  # the model's own (BandSpec.high_band_exponent), else GAIN_EXPONENT
        window = np.hanning(hop + 2)[1:-1]
        top = np.flatnonzero(np.fft.rfftfreq(hop, 1.0 / model_rate) >= GAIN_FROM_HZ)
        phase = 2 * np.pi * np.outer(np.arange(hop), top) / hop  # the windowed DFT's top-octave rows, as reals
        self.top_dft = window[:, None] * np.concatenate([np.cos(phase), np.sin(phase)], axis=1)
        self.ramp = np.minimum(np.arange(1, hop + 1, dtype=np.float32) / (RAMP_FRACTION * hop), 1.0)[None]
        # last hop's gain: each hop ramps from it; the stream starts silent above the model's band, so the high
        # band cannot pass (a click) before the model's first gain arrives
        self.previous = np.zeros((channels, 1), np.float32)
        self.hops_done = 0

    def feed(self, block: np.ndarray, at_model_rate: np.ndarray) -> None:
        """``block`` ``(C, T)`` at the stream's rate and its model-rate version: split off the high band."""
        self.raw = np.concatenate([self.raw, block], axis=1) if self.raw.size else block
        self._split(self.lowpass.process(at_model_rate))

    def flush(self, tail_at_model_rate: np.ndarray) -> None:
        """End of stream: the model-rate tail and everything still inside the crossover."""
        low = np.concatenate([self.lowpass.process(tail_at_model_rate), self.lowpass.flush()], axis=1)
        missing = low.shape[1] - self.raw.shape[1]
        if missing > 0:
            self.raw = np.concatenate([self.raw, np.zeros((self.raw.shape[0], missing), np.float32)], axis=1)
        self._split(low)

    def _split(self, low: np.ndarray) -> None:
        count = min(low.shape[1], self.raw.shape[1])
        high = self.raw[:, :count] - low[:, :count]
        self.raw = self.raw[:, count:]
        self.high = np.concatenate([self.high, high.astype(np.float32)], axis=1)

    def gains(self, enhanced: np.ndarray, dry: np.ndarray) -> np.ndarray:
        """Per-sample gains ``(C, T)`` at the model's rate for one step's output and its aligned input."""
        channels, samples = enhanced.shape
        frames = samples // self.hop
        used = frames * self.hop
        hops = np.concatenate([enhanced[:, :used], dry[:, :used]]).reshape(2 * channels * frames, self.hop)
        # in float64: float32 sums round differently with the arrays' memory alignment (SIMD), and a
        # file must come out bit-identical in any process (tests/test_cluster.py)
        power = np.square(hops.astype(np.float64) @ self.top_dft).sum(-1).reshape(2, channels, frames)
        power_out, power_in = power
        ratio = np.sqrt(power_out / np.maximum(power_in, SILENT_BAND))
        gain = np.where(power_in > SILENT_BAND, np.minimum(ratio, 1.0) ** self.exponent, np.nan).astype(np.float32)
        out = np.empty((channels, used), np.float32)
        for index in range(frames):
            target = np.where(np.isnan(gain[:, index:index + 1]), self.previous, gain[:, index:index + 1])
            if self.hops_done < SILENT_START_HOPS:  # the model's output is still filling in: keep the band shut
                target = np.zeros_like(target)
            self.hops_done += 1
            out[:, index * self.hop:(index + 1) * self.hop] = self.previous + (target - self.previous) * self.ramp
            self.previous = target
        return out

    def mix(self, low: np.ndarray, gains: np.ndarray, first: int) -> np.ndarray:
        """The model's low band at the stream's rate (its first sample is output number ``first`` of the
        model-to-stream resampler) plus the gained high band lined up with it.

        That resampler is zero-phase: output j sits at model-rate time j * down / up, so its gain is
        the model-rate gain there (ramped per hop already: holding it is smooth enough).
        """
        self.gain_history = np.concatenate([self.gain_history, gains], axis=1)
        count = low.shape[1]
        at = np.arange(first, first + count) * self.down // self.up - self.gain_start
        available = self.gain_history.shape[1]
        gain = self.gain_history[:, np.clip(at, 0, max(available - 1, 0))] if available else \
            np.zeros_like(low)
        keep_from = max(0, int(at[-1]) if count else 0)
        self.gain_history = self.gain_history[:, keep_from:]
        self.gain_start += keep_from
        high = self.high[:, :count]
        self.high = self.high[:, count:]
        if high.shape[1] < count:
            high = np.concatenate([high, np.zeros((high.shape[0], count - high.shape[1]), np.float32)], axis=1)
        return low + gain * high
