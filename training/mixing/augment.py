"""The recording chain a user's voice goes through, simulated: room, microphone, band, level, clipping.

Pipeline step 2 of 5 (corpus -> dataset -> train -> evaluate -> ship): dataset.

Every mixture the trainer sees passes through :class:`RecordingChain`:

* a room (pyroomacoustics image-source RIRs, RT60 0.1-0.9 s): the *target* keeps the
  direct path and early reflections (50 ms), so the model also dries a room a little;
* the microphone's colouring (random shelving and peaking EQ, the same for speech and noise);
* a band limit (telephone 300-3400 Hz, 7 kHz, or none), the same for speech and noise;
* a low noise floor under the "clean" speech (real recordings have one), kept in the target;
* mild clipping of the noisy input only.

Levels (±20 dB) are set by the mixer. Everything is numpy/scipy and seeded by the caller's rng.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
EARLY_SECONDS = 0.05


@dataclass
class ChainConfig:
    room_probability: float = 0.5
    early_ms: float = 50.0        # the target keeps the direct path and this much of the room
    noise_room_probability: float = 0.3
    eq_probability: float = 0.6
    band_probabilities: tuple[float, float, float] = (0.08, 0.12, 0.80)  # telephone, 7 kHz, full
    floor_probability: float = 0.5
    floor_db: tuple[float, float] = (-65.0, -45.0)                     # below the speech RMS
    clip_probability: float = 0.1
    rir_bank: int = 300


def make_rir(rng: np.random.Generator) -> np.ndarray:
    """One room impulse response (direct path first) from a random shoebox room."""
    import pyroomacoustics as pra

    while True:  # a large room cannot be as dry as a small one: draw again when Sabine says so
        dims = rng.uniform([3.0, 2.5, 2.4], [10.0, 8.0, 4.0])
        rt60 = float(rng.uniform(0.1, 0.9))
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:
            continue
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 40))
    source = rng.uniform(0.4, dims - 0.4)
    direction = rng.normal(size=3)
    distance = rng.uniform(0.3, 3.0)
    mic = np.clip(source + direction / np.linalg.norm(direction) * distance, 0.3, dims - 0.3)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    onset = int(np.argmax(np.abs(rir)))
    rir = rir[max(0, onset - 8):]
    return (rir / np.abs(rir).max()).astype(np.float32)


def rir_bank(count: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make_rir(rng) for _ in range(count)]


def _convolve(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    return signal.fftconvolve(audio, rir)[: len(audio)].astype(np.float32)


def reverberate(speech: np.ndarray, rir: np.ndarray, early_seconds: float = EARLY_SECONDS
                ) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant speech, target = direct path + early reflections), the direct path at unit gain."""
    early = rir[: 8 + int(early_seconds * SAMPLE_RATE)].copy()
    early *= np.hanning(2 * len(early))[len(early):] ** 0.25  # fade the early part out, no hard edge
    return _convolve(speech, rir), _convolve(speech, early)


def random_eq(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A microphone's colouring: low shelf, high shelf and one peak, each within ±6 dB (SOS form)."""
    sections = []
    for kind, low, high in (("low", 80, 400), ("high", 2000, 7000), ("peak", 300, 5000)):
        gain_db = rng.uniform(-6, 6)
        freq = rng.uniform(low, high)
        sections.append(_biquad(kind, freq, gain_db, rng.uniform(0.5, 2.0)))
    return np.vstack(sections)


def _biquad(kind: str, freq: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ cookbook shelving/peaking biquad as one SOS row."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sq = 2 * np.sqrt(a) * alpha
        sign = 1 if kind == "low" else -1
        b = [a * ((a + 1) - sign * (a - 1) * cos + sq), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
             a * ((a + 1) - sign * (a - 1) * cos - sq)]
        den = [(a + 1) + sign * (a - 1) * cos + sq, -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
               (a + 1) + sign * (a - 1) * cos - sq]
    return np.array(b + den) / den[0]


_TELEPHONE = signal.butter(6, [300, 3400], "bandpass", fs=SAMPLE_RATE, output="sos")
_SEVEN_K = signal.butter(8, 7000, "lowpass", fs=SAMPLE_RATE, output="sos")


class RecordingChain:
    """Applies a random recording chain to (speech, noise); see the module docstring."""

    def __init__(self, config: ChainConfig | None = None, seed: int = 7) -> None:
        self.config = config or ChainConfig()
        self.rirs = rir_bank(self.config.rir_bank, seed) if self.config.rir_bank else []

    def speech(self, speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(what the microphone hears of the voice, the target)."""
        cfg = self.config
        if self.rirs and rng.random() < cfg.room_probability:
            return reverberate(speech, self.rirs[rng.integers(len(self.rirs))], cfg.early_ms / 1000)
        return speech, speech.copy()

    def noise(self, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.rirs and rng.random() < self.config.noise_room_probability:
            rir = self.rirs[rng.integers(len(self.rirs))]
            wet = _convolve(noise, rir)
            return wet * (np.std(noise) / (np.std(wet) + 1e-12))
        return noise

    def microphone(self, signals: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """The same EQ and band limit for every signal (speech, target, noise all pass one microphone)."""
        cfg = self.config
        filters = []
        if rng.random() < cfg.eq_probability:
            filters.append(random_eq(rng))
        band = rng.choice(3, p=np.asarray(cfg.band_probabilities) / sum(cfg.band_probabilities))
        if band == 0:
            filters.append(_TELEPHONE)
        elif band == 1:
            filters.append(_SEVEN_K)
        for sos in filters:
            signals = [signal.sosfilt(sos, x).astype(np.float32) for x in signals]
        return signals

    def noise_floor(self, length: int, speech_rms: float, rng: np.random.Generator) -> np.ndarray | None:
        """A faint hiss under the clean speech (kept in the target), or None."""
        if rng.random() >= self.config.floor_probability or speech_rms <= 0:
            return None
        hiss = rng.standard_normal(length).astype(np.float32)
        if rng.random() < 0.5:  # pinkish
            hiss = signal.lfilter([0.05], [1, -0.95], hiss).astype(np.float32)
            hiss /= np.std(hiss) + 1e-12
        return hiss * speech_rms * 10 ** (rng.uniform(*self.config.floor_db) / 20)

    def clip(self, noisy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Mild clipping of the input only (at 0.5-0.9 of its peak), sometimes."""
        if rng.random() >= self.config.clip_probability:
            return noisy
        peak = float(np.abs(noisy).max())
        limit = peak * rng.uniform(0.5, 0.9)
        return np.clip(noisy, -limit, limit)
