"""Streaming windowed-sinc resampler: any rate to any rate, block by block.

Output sample j sits at input time ``j * in_rate / out_rate`` exactly (a
zero-phase kernel), so a resampled file lines up with the original; the price
is ``lookahead`` input samples of delay in a live stream.
"""
from __future__ import annotations

import math

import numpy as np

MIN_RATE, MAX_RATE = 1000, 768_000  # sample rates honoured (a header may claim anything)
_ZERO_CROSSINGS = 16
_ROLLOFF = 0.94
_FEW_PHASES = 8  # up to this many phases, outputs are computed a phase at a time
_KEPT_PATTERNS = 16  # input/phase patterns kept for the many-phase path


def check_sample_rate(rate: float) -> int:
    """``rate`` as an int, or a one-line ValueError when no audio device or file could really have it."""
    if not (isinstance(rate, (int, float, np.integer, np.floating)) and MIN_RATE <= rate <= MAX_RATE
            and float(rate).is_integer()):
        raise ValueError(f"sample rate {rate} Hz is not supported (use a whole number of Hz from "
                         f"{MIN_RATE} to {MAX_RATE})")
    return int(rate)


class StreamResampler:
    """Resample ``(channels, time)`` float32 blocks; state carried across calls."""

    def __init__(self, in_rate: int, out_rate: int, channels: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        g = math.gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g
        self.channels = channels
        self.identity = self.up == self.down
        cutoff = _ROLLOFF * min(1.0, self.up / self.down)  # relative to input Nyquist
        self.half_width = int(math.ceil(_ZERO_CROSSINGS / cutoff))
        taps = 2 * self.half_width
        phases = np.arange(self.up)[:, None] / self.up  # fractional position of each phase
        offsets = np.arange(taps)[None, :] - (self.half_width - 1)  # input n = base + offset
        distance = offsets - phases  # input time minus output time
        window = np.cos(0.5 * np.pi * np.clip(distance / self.half_width, -1, 1)) ** 2
        self.table = (cutoff * np.sinc(cutoff * distance) * window).astype(np.float32)  # (up, taps)
        self.lookahead = self.half_width
        # Input buffer holds samples from absolute index `self.start`; zeros before 0.
        self.buffer = np.zeros((channels, self.half_width - 1), np.float32)
        self.start = -(self.half_width - 1)
        self.next_out = 0  # index of the next output sample
        self.consumed = 0  # input samples received
        self._patterns: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed ``(channels, T)``; returns the output samples now computable."""
        if self.identity:
            return block.astype(np.float32, copy=False)
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)], axis=1)
        self.consumed += block.shape[1]
        return self._emit(limit=None)

    def flush(self) -> np.ndarray:
        """Pad the end with silence and return every remaining output sample."""
        if self.identity:
            return np.zeros((self.channels, 0), np.float32)
        total_out = -(-self.consumed * self.up // self.down)  # ceil
        pad = np.zeros((self.channels, self.half_width + 1), np.float32)
        self.buffer = np.concatenate([self.buffer, pad], axis=1)
        return self._emit(limit=total_out)

    def _emit(self, limit: int | None) -> np.ndarray:
        available_end = self.start + self.buffer.shape[1]  # one past the last buffered index
        # Output j needs inputs up to base_j + half_width, base_j = floor(j * down / up).
        last = (available_end - 1 - self.half_width) * self.up // self.down  # largest j with base+hw <= end-1
        while (last + 1) * self.down // self.up + self.half_width <= available_end - 1:
            last += 1
        stop = last + 1 if limit is None else min(last + 1, limit)
        if stop <= self.next_out:
            return np.zeros((self.channels, 0), np.float32)
        out = self._polyphase(self.next_out, stop) if self.up <= _FEW_PHASES else self._gathered(self.next_out, stop)
        self.next_out = stop
        keep_from = (stop * self.down // self.up) - (self.half_width - 1)
        drop = max(0, keep_from - self.start)
        self.buffer = self.buffer[:, drop:]
        self.start += drop
        return out.astype(np.float32, copy=False)

    def _polyphase(self, begin: int, stop: int) -> np.ndarray:
        """Outputs ``begin..stop-1`` a phase at a time: outputs ``up`` apart share a phase and lie
        ``down`` inputs apart, so each phase is one correlation (48 <-> 16 kHz: 3 phases or 1)."""
        count, taps = stop - begin, self.table.shape[1]
        out = np.empty((self.channels, count), np.float32)
        for offset in range(min(self.up, count)):
            j = begin + offset
            first = j * self.down // self.up - (self.half_width - 1) - self.start
            span = (len(range(offset, count, self.up)) - 1) * self.down + taps
            kernel = self.table[(j * self.down) % self.up]
            for channel in range(self.channels):
                out[channel, offset::self.up] = np.correlate(self.buffer[channel, first: first + span], kernel,
                                                             "valid")[:: self.down]
        return out

    def _gathered(self, begin: int, stop: int) -> np.ndarray:
        """Outputs ``begin..stop-1`` with every output's own phase (rates with many phases, e.g. 44.1 kHz).

        Which inputs and which phase each output takes depends only on ``begin % up`` and the count,
        and a steady stream repeats the same few: those patterns are kept."""
        first = begin * self.down // self.up - (self.half_width - 1) - self.start
        index, coefficients = self._pattern(begin % self.up, stop - begin)
        return np.einsum("cjt,jt->cj", self.buffer[:, first:][:, index], coefficients)

    def _pattern(self, phase: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        key = (phase, count)
        pattern = self._patterns.get(key)
        if pattern is None:
            j = np.arange(phase, phase + count)
            offsets = j * self.down // self.up - phase * self.down // self.up
            pattern = (offsets[:, None] + np.arange(self.table.shape[1])[None, :],
                       np.ascontiguousarray(self.table[(j * self.down) % self.up]))
            if len(self._patterns) >= _KEPT_PATTERNS:
                self._patterns.clear()
            self._patterns[key] = pattern
        return pattern
