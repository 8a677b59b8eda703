"""Where a denoiser's scores come from: how much noise it leaves in speech pauses, how much speech it keeps.

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate.

Two levels per clip, both from the clean reference (so any black-box system can be measured):

* ``noise_left_db``: the output's energy in the pauses of the speech (10 ms frames whose clean
  energy, smoothed over 50 ms, is 40 dB under the clip's loudest) over the noisy input's energy
  there. Lower: more noise removed where there is nothing to keep.
* ``speech_kept_db``: the scale of the clean speech inside the output (the SI-SDR target's scale,
  ``<y, s> / <s, s>``) in dB. 0: speech passed at its level; below 0: speech removed with the noise.
"""
from __future__ import annotations

import numpy as np

DIAGNOSTICS = ("noise_left_db", "speech_kept_db")
FRAME = 160          # 10 ms at 16 kHz
PAUSE_DB = -40.0     # a frame this far under the loudest smoothed frame is a pause


def pause_frames(clean: np.ndarray) -> np.ndarray:
    """Boolean mask of the 10 ms frames of ``clean`` that lie in a pause of the speech."""
    count = len(clean) // FRAME
    energy = (clean[: count * FRAME].reshape(count, FRAME) ** 2).mean(1)
    smoothed = np.convolve(energy, np.ones(5) / 5, mode="same")
    return smoothed < smoothed.max() * 10 ** (PAUSE_DB / 10)


def level_diagnostics(estimate: np.ndarray, clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """``noise_left_db`` (NaN when the clip has no pause) and ``speech_kept_db`` of one 16 kHz clip."""
    pauses = pause_frames(clean)
    samples = np.repeat(pauses, FRAME)
    length = len(samples)
    noisy_pause = float(np.sum(noisy[:length][samples] ** 2))
    left = float(np.sum(estimate[:length][samples] ** 2))
    noise_left = 10 * np.log10((left + 1e-20) / noisy_pause) if pauses.any() and noisy_pause > 0 else float("nan")
    scale = float(estimate @ clean) / (float(clean @ clean) + 1e-20)
    return {"noise_left_db": noise_left, "speech_kept_db": 20 * np.log10(max(scale, 1e-6))}
