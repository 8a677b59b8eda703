"""Speech with its pauses cut out: read speech that never leaves the noise alone (an audiobook, a talk).

Used by the ``no pauses`` hard stream (``training.evaluate --stream``) and by training mixtures
with ``--continuous-probability``.
"""
from __future__ import annotations

import numpy as np

FRAME = 320  # 20 ms at 16 kHz: the unit in which pauses are cut out


def kept_runs(speech: np.ndarray, floor_db: float = -40.0) -> list[np.ndarray]:
    """The runs of consecutive 20 ms frames of ``speech`` at most ``-floor_db`` below its loudest frame."""
    frames = speech[: len(speech) // FRAME * FRAME].reshape(-1, FRAME)
    energy = np.mean(np.square(frames, dtype=np.float64), axis=1)
    if not energy.any():
        return []
    keep = energy >= energy.max() * 10 ** (floor_db / 10)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
    return [frames[start:end].reshape(-1) for start, end in zip(edges[::2], edges[1::2])]


def crossfaded(parts: list[np.ndarray], fade: int) -> np.ndarray:
    """``parts`` end to end, each join a linear cross-fade of ``fade`` samples (0: butted)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, np.float32)
    if not fade:
        return np.concatenate(parts)
    ramp = ((np.arange(fade) + 1) / (fade + 1)).astype(np.float32)
    out = [parts[0]]
    for part in parts[1:]:
        previous = out[-1]
        if len(previous) < fade or len(part) < fade:
            out.append(part)
            continue
        out[-1] = previous[:-fade]
        out += [previous[-fade:] * (1 - ramp) + part[:fade] * ramp, part[fade:]]
    return np.concatenate(out)


def without_pauses(speech: np.ndarray, floor_db: float = -40.0, fade: int = 0) -> np.ndarray:
    """``speech`` with every 20 ms frame more than ``-floor_db`` below its loudest frame cut out;
    ``fade``: the joins cross-faded over that many samples (no click where a pause was)."""
    return crossfaded(kept_runs(speech, floor_db), fade)


def rms(audio: np.ndarray) -> float:
    """The RMS of ``audio`` (0 when empty)."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0


def active_rms(speech: np.ndarray) -> float:
    """The RMS of the frames of ``speech`` that are not pauses (0 for silence)."""
    return rms(without_pauses(speech))
