"""Synthetic noises added on top of the recorded ones (training only).

Pipeline step 2 of 5 (corpus -> dataset -> train -> evaluate -> ship): dataset.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
KINDS = ("white", "pink", "brown", "hum", "fan", "clicks")


def _coloured(rng: np.random.Generator, length: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1]
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n=length)


def make(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of noise ``kind`` at 16 kHz, unit RMS, float32."""
    t = np.arange(length) / SAMPLE_RATE
    if kind == "white":
        noise = rng.standard_normal(length)
    elif kind == "pink":
        noise = _coloured(rng, length, 1.0)
    elif kind == "brown":
        noise = _coloured(rng, length, 2.0)
    elif kind == "hum":
        base = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
        noise = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3))
                    for k in range(1, 12))
        noise = noise + 0.05 * rng.standard_normal(length)
    elif kind == "fan":
        spectrum = np.fft.rfft(rng.standard_normal(length))
        freqs = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
        centre, width = rng.uniform(150, 1500), rng.uniform(100, 800)
        spectrum *= np.exp(-0.5 * ((freqs - centre) / width) ** 2) + 0.05 / (1 + freqs / 500)
        noise = np.fft.irfft(spectrum, n=length) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(5, 40) * t))
    elif kind == "clicks":
        noise = np.zeros(length)
        for start in rng.integers(0, max(1, length - 400), size=max(1, int(length / SAMPLE_RATE * rng.uniform(3, 12)))):
            burst = rng.standard_normal(400) * np.exp(-np.arange(400) / rng.uniform(20, 80))
            noise[start:start + 400] += burst[: length - start]
        noise += 0.01 * rng.standard_normal(length)
    else:
        raise ValueError(f"unknown synthetic noise {kind!r}")
    noise = np.asarray(noise, dtype=np.float64)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)
