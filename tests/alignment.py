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
