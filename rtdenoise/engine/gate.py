"""A voice gate after the denoiser: silence between words, every word whole.

The cleaned signal's level (RMS over 10 ms) opens the gate when it rises above a
threshold (dBFS). Words are never clipped:

* **look-back**: the gate works on the output delayed by ``lookback_ms``, so when it
  opens it is already open for the word's first ``lookback_ms`` (its onset);
* **hold**: it stays open ``hold_ms`` after the level falls (word endings, short gaps);
* **ramps**: it opens over ``attack_ms`` and closes over ``release_ms`` (no clicks).

Closed, it attenuates by ``floor_db``. It costs ``lookback_ms`` of latency, so it is
off by default. Streaming equals offline for any block size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GateSettings:
    threshold_db: float = -45.0   # dBFS of the cleaned signal's 10 ms RMS that counts as voice
    lookback_ms: float = 60.0
    hold_ms: float = 250.0
    attack_ms: float = 5.0
    release_ms: float = 80.0
    floor_db: float = -60.0


class VoiceGate:
    """Gate ``(C, T)`` blocks at ``rate``; the channels open together (one voice, several microphones)."""

    def __init__(self, rate: int, channels: int, settings: GateSettings | None = None) -> None:
        self.settings = s = settings or GateSettings()
        if not -120 < s.threshold_db < 0:
            raise ValueError(f"--gate must be a level in dBFS between -120 and 0, got {s.threshold_db:g}")
        self.window = max(1, round(rate * 0.010))
        self.delay = round(rate * s.lookback_ms / 1000)
        self.hold = round(rate * s.hold_ms / 1000)
        self.attack_step = 1.0 / max(1, round(rate * s.attack_ms / 1000))
        self.release_step = 1.0 / max(1, round(rate * s.release_ms / 1000))
        self.floor = 10 ** (s.floor_db / 20)
        self.threshold = 10 ** (s.threshold_db / 20)
        self.delayed = np.zeros((channels, self.delay), np.float32)  # the look-back: output waits this long
        self.pending = np.zeros((channels, 0), np.float32)            # samples not yet a whole 10 ms window
        self.open_for = 0      # samples the gate stays open without new voice (the hold)
        self.gain = 0.0        # 0 closed .. 1 open, before the floor
        # Per-sample gains for the samples still to arrive: a 10 ms window's decision governs the
        # next window's arrivals, so the first window is closed and every gain is known on arrival.
        self.gains = np.zeros(self.window, np.float32)
        self.latency_samples = self.delay

    def process(self, block: np.ndarray) -> np.ndarray:
        """Gate one block; returns as many samples as came in, ``lookback_ms`` later."""
        self.pending = np.concatenate([self.pending, block], axis=1)
        whole = self.pending.shape[1] - self.pending.shape[1] % self.window
        decided = [self.gains]
        for start in range(0, whole, self.window):
            piece = self.pending[:, start:start + self.window]
            voiced = float(np.sqrt(np.mean(np.square(piece, dtype=np.float64)))) >= self.threshold
            decided.append(self._ramp(voiced))
        self.gains = np.concatenate(decided)
        self.pending = self.pending[:, whole:]
        count = block.shape[1]
        stream = np.concatenate([self.delayed, block], axis=1)
        out, self.delayed = stream[:, :count], stream[:, count:]
        gains, self.gains = self.gains[:count], self.gains[count:]
        return (out * (self.floor + (1.0 - self.floor) * gains)[None]).astype(np.float32)

    def _ramp(self, voiced: bool) -> np.ndarray:
        """Gains for the 10 ms after a window: they meet audio that left the delay line ``lookback_ms``
        late, so the gate is open before a word starts."""
        if voiced:
            self.open_for = self.hold
        else:
            self.open_for = max(0, self.open_for - self.window)
        target = 1.0 if self.open_for > 0 else 0.0
        step = self.attack_step if target > self.gain else self.release_step
        out = np.empty(self.window, np.float32)
        gain = self.gain
        for index in range(self.window):
            gain = min(target, gain + step) if target > gain else max(target, gain - step)
            out[index] = gain
        self.gain = gain
        return out
