"""A classic baseline to compare against: stationary spectral gating (as noisereduce does)."""
from __future__ import annotations

import numpy as np
import torch


def spectral_gate(noisy: np.ndarray, n_fft: int = 512, hop: int = 128, percentile: float = 15.0,
                  over_subtraction: float = 1.5, floor: float = 0.1) -> np.ndarray:
    """Wiener-like gain from a per-bin noise floor (a low percentile of the clip's magnitudes).

    Offline and non-causal: it sees the whole clip, which favours it over a streaming model.
    """
    x = torch.from_numpy(np.asarray(noisy, dtype=np.float32))
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    magnitude = spec.abs()
    noise = torch.quantile(magnitude, percentile / 100, dim=-1, keepdim=True) * over_subtraction
    gain = torch.clamp(1 - (noise / (magnitude + 1e-10)) ** 2, min=0).sqrt()
    gain = torch.nn.functional.avg_pool1d(gain[None], 3, 1, 1, count_include_pad=False)[0]  # less musical noise
    gain = torch.clamp(gain, min=floor)
    return torch.istft(spec * gain, n_fft, hop, window=window, length=len(x)).numpy()
