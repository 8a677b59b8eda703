"""Lining a recording up with what was played into it (the device tests)."""
from __future__ import annotations

import numpy as np


def lag_of(recorded: np.ndarray, reference: np.ndarray, before: int | None = None) -> int:
    """Where ``reference`` starts in ``recorded`` (cross-correlation peak); with ``before``, the peak among
    the starts 0 to ``before`` - 1 only."""
    n = len(recorded) + len(reference)
    correlation = np.fft.irfft(np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(reference, n)), n)
    if before is not None:
        return int(np.argmax(correlation[:max(1, before)]))
    lag = int(np.argmax(correlation))
    return lag - n if lag > len(recorded) else lag


def si_sdr_at_best_fraction(target: np.ndarray, estimate: np.ndarray, steps: int = 21) -> float:
    """SI-SDR (dB) of ``estimate`` against ``target`` moved by the best fraction of a sample (-0.5 to +0.5): a
    sound server's resamplers place a stream a fraction of a sample off, which costs a few dB no one hears."""
    frequencies = np.fft.rfftfreq(len(target))
    spectrum = np.fft.rfft(target)
    best = -100.0
    for fraction in np.linspace(-0.5, 0.5, steps):
        moved = np.fft.irfft(spectrum * np.exp(-2j * np.pi * frequencies * fraction), len(target))
        scaled = moved * (estimate @ moved) / (moved @ moved) if moved @ moved > 0 else moved
        error = (estimate - scaled) @ (estimate - scaled)
        if scaled @ scaled > 0 and error > 0:
            best = max(best, float(10 * np.log10((scaled @ scaled) / error)))
    return best
