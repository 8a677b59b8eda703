"""A differentiable STOI (Taal et al. 2011) for training at 16 kHz.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.

The measure follows pystoi's constants (15 one-third octave bands from 150 Hz,
384 ms segments, -15 dB clipping) on frames of the same duration (25.6 ms, 50 %
overlap) taken directly at 16 kHz instead of after resampling to 10 kHz, and it
replaces the removal of silent frames by weighting each segment with its share
of frames within 40 dB of the loudest. ``torch_stoi`` does the same job but
needs torchaudio, which has no build for the pinned torch.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

SAMPLE_RATE = 16000
FRAME = 410          # 25.6 ms, pystoi's 256 samples at 10 kHz
HOP = FRAME // 2
NFFT = 1024
BANDS = 15
MIN_FREQ = 150.0
SEGMENT = 30         # frames: 384 ms
CLIP_DB = -15.0
DYNAMIC_RANGE_DB = 40.0


@functools.lru_cache(maxsize=4)
def _octave_matrix(device: str) -> Tensor:
    from pystoi.utils import thirdoct

    matrix = thirdoct(SAMPLE_RATE, NFFT, BANDS, MIN_FREQ)[0]
    return torch.as_tensor(np.asarray(matrix), dtype=torch.float32, device=device)


def _band_envelopes(x: Tensor) -> Tensor:
    """(B, N) -> (B, bands, frames) one-third octave magnitudes."""
    window = torch.hann_window(FRAME, device=x.device)
    spec = torch.stft(x, NFFT, HOP, FRAME, window=window, center=False, return_complex=True)
    power = spec.real.square() + spec.imag.square()
    return (_octave_matrix(str(x.device)) @ power).clamp_min(1e-12).sqrt()


def stoi(estimate: Tensor, clean: Tensor, eps: float = 1e-8) -> Tensor:
    """Short-time objective intelligibility per signal, ``(B, N) -> (B,)``, differentiable in ``estimate``."""
    est, ref = _band_envelopes(estimate), _band_envelopes(clean)
    frame_db = 10 * torch.log10(ref.square().sum(1) + 1e-12)                      # (B, frames)
    active = (frame_db > frame_db.amax(-1, keepdim=True) - DYNAMIC_RANGE_DB).float()
    est, ref = est.unfold(-1, SEGMENT, 1), ref.unfold(-1, SEGMENT, 1)               # (B, bands, segs, SEGMENT)
    weight = active.unfold(-1, SEGMENT, 1).mean(-1)                                 # (B, segs)
    scale = ref.norm(dim=-1, keepdim=True) / (est.norm(dim=-1, keepdim=True) + eps)
    est = torch.minimum(est * scale, ref * (1 + 10 ** (-CLIP_DB / 20)))
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    correlation = (est * ref).sum(-1) / (est.norm(dim=-1) * ref.norm(dim=-1) + eps)  # (B, bands, segs)
    per_segment = correlation.mean(1)
    return (per_segment * weight).sum(-1) / weight.sum(-1).clamp_min(eps)
