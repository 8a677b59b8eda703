"""Streams for training: mixtures joined into one stream whose conditions change.

Pipeline step 2 of 5 (corpus -> dataset -> train -> evaluate -> ship): dataset.

A microphone is one endless stream: the speaker, the noise, the SNR and the level change
every few seconds while the model's state carries on. :class:`StreamMixer` makes training
streams of that kind from a :class:`~training.dataset.Mixer` (pieces of 1.5-6 s, each a
fresh mixture, some with the noise fading in, a level step mid-sentence or no speech at
all; with ``same_noise_probability`` some keep the noise of the piece before running on
under another speaker, or alone, as a room's noise goes on while people take turns);
:func:`join` lays any pieces end to end and says where each one lies, so that a
stream's output can be scored piece by piece (``training.evaluate --stream``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.dataset import SAMPLE_RATE, Mixer

Span = tuple[int, int]


@dataclass(frozen=True)
class StreamConfig:
    seconds: float = 16.0                          # one training stream
    piece_seconds: tuple[float, float] = (1.5, 6.0)
    pause_probability: float = 0.12                # a piece of noise alone (no speech)
    fade_probability: float = 0.15                 # the piece's noise fades in over fade_seconds
    fade_seconds: tuple[float, float] = (1.0, 3.0)
    level_step_probability: float = 0.2            # the whole piece's level steps by +-level_step_db mid-piece
    level_step_db: tuple[float, float] = (3.0, 12.0)
    same_noise_probability: float = 0.0            # the piece's speech over the previous piece's noise, going on

    def __post_init__(self) -> None:
        low, high = self.piece_seconds
        if not 0 < low <= high or self.seconds < low:
            raise ValueError(f"invalid stream settings {self}")


def join(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list[Span]]:
    """``(noisy, clean)`` pieces end to end: the stream's noisy and clean audio and each piece's ``[start, end)``."""
    spans, start = [], 0
    for noisy, _ in pieces:
        spans.append((start, start + len(noisy)))
        start += len(noisy)
    return (np.concatenate([p[0] for p in pieces]).astype(np.float32),
            np.concatenate([p[1] for p in pieces]).astype(np.float32), spans)


def fade_in_noise(noisy: np.ndarray, clean: np.ndarray, samples: int) -> np.ndarray:
    """The noise (noisy - clean) raised linearly from silence over ``samples``."""
    ramp = np.minimum(1.0, np.arange(len(noisy)) / max(1, samples)).astype(np.float32)
    return clean + ramp * (noisy - clean)


def noise_going_on(noise: np.ndarray, samples: int) -> np.ndarray:
    """``samples`` of noise that runs on from ``noise``'s last sample: played backwards, then forwards, in turn."""
    cycle = np.concatenate([noise[::-1], noise])
    return np.tile(cycle, samples // max(1, len(cycle)) + 1)[:samples]


def level_step(noisy: np.ndarray, clean: np.ndarray, at: int, gain_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Both signals' level changed by ``gain_db`` from sample ``at`` on (over 10 ms), never past 0.99 peak."""
    after = np.abs(noisy[at:]).max(initial=0.0)
    gain = min(10 ** (gain_db / 20), 0.99 / after) if after > 0 else 10 ** (gain_db / 20)
    ramp = np.clip((np.arange(len(noisy)) - at) / (SAMPLE_RATE // 100), 0.0, 1.0).astype(np.float32)
    scale = 1.0 + (gain - 1.0) * ramp
    return noisy * scale, clean * scale


class StreamMixer:
    """``(noisy, clean, meta)`` streams of ``config.seconds`` made of changing pieces (see the module docstring).

    ``mixer`` mixes the pieces; its own length must be at least the longest piece.
    """

    def __init__(self, mixer: Mixer, config: StreamConfig | None = None) -> None:
        self.mixer = mixer
        self.config = config or StreamConfig()
        self.length = int(self.config.seconds * SAMPLE_RATE)
        if mixer.length < int(self.config.piece_seconds[1] * SAMPLE_RATE):
            raise ValueError("the piece mixer is shorter than the longest piece")

    def piece(self, rng: np.random.Generator, samples: int,
              noise_before: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """One piece of ``samples``: a fresh mixture, maybe changed; returns (noisy, clean, what was done).
        With ``noise_before`` (the previous piece's noise) it may be new speech over that noise going on."""
        cfg = self.config
        noisy, clean, _ = self.mixer.mix(rng)
        noisy, clean = noisy[:samples], clean[:samples]
        if cfg.same_noise_probability and noise_before is not None and len(noise_before) \
                and rng.random() < cfg.same_noise_probability:   # no draw at 0: the streams stay as they were
            speech = np.zeros_like(clean) if rng.random() < cfg.pause_probability else clean
            noisy = speech + noise_going_on(noise_before, samples)
            peak = float(np.abs(noisy).max(initial=0.0))
            scale = 0.99 / peak if peak > 0.99 else 1.0
            return noisy * scale, speech * scale, "same noise" if speech is clean else "same noise only"
        if rng.random() < cfg.pause_probability:
            return noisy - clean, np.zeros_like(clean), "noise only"
        if rng.random() < cfg.fade_probability:
            return fade_in_noise(noisy, clean, int(rng.uniform(*cfg.fade_seconds) * SAMPLE_RATE)), clean, "fade-in"
        if rng.random() < cfg.level_step_probability:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            noisy, clean = level_step(noisy, clean, int(rng.integers(samples // 4, 3 * samples // 4)),
                                      sign * rng.uniform(*cfg.level_step_db))
            return noisy, clean, "level step"
        return noisy, clean, "mixture"

    def mix(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
        low, high = (int(s * SAMPLE_RATE) for s in self.config.piece_seconds)
        pieces, kinds, total = [], [], 0
        while total < self.length:
            samples = min(int(rng.integers(low, high + 1)), self.length - total)
            noise_before = pieces[-1][0] - pieces[-1][1] if pieces else None
            noisy, clean, kind = self.piece(rng, samples, noise_before)
            pieces.append((noisy, clean))
            kinds.append(kind)
            total += samples
        noisy, clean, spans = join(pieces)
        return noisy, clean, {"spans": spans, "pieces": kinds}
