"""RNNoise's pitch comb filter, causal and batched: find each frame's pitch period in the
past signal, take the frame one period back, and add it to the frame where the band gains
say noise dominates and the two frames agree (voiced speech), which cancels the noise
between the harmonics that a band gain cannot reach.

Valin, "A Hybrid DSP/Deep Learning Approach to Real-Time Full-Band Speech Enhancement"
(2018), section 3.3; the strength rule is the paper's, the search a plain normalised
cross-correlation.
"""
from __future__ import annotations

import torch
from torch import Tensor

TINY = 1e-20
SETTLE = 1e-12  # in the energy ratio that keeps each band's energy: its square is a normal float32, so no NaN gradient


def pitch_periods(signal: Tensor, count: int, hop: int, frame: int, shortest: int, longest: int,
                  direct: bool = False) -> Tensor:
    """``(B, count)`` periods in samples, shortest..longest, of the frames of ``signal`` ``(B, longest + ...)``.

    Frame j is ``signal[:, longest + j hop : longest + j hop + frame]``; the period maximises
    the normalised correlation with the frame ``period`` samples earlier (never later).
    ``direct``: the correlations as one matrix product instead of FFTs (graphs without an FFT).
    """
    span = longest + frame
    segments = signal.unfold(-1, span, hop)[:, :count]                         # (B, k, span)
    current = segments[..., longest:]                                          # (B, k, frame)
    if direct:   # lag-major: index m = longest - period
        batch = segments.shape[0] * segments.shape[1]   # each frame correlated with its own segment: grouped conv
        products = torch.nn.functional.conv1d(segments.reshape(1, batch, span), current.reshape(batch, 1, frame),
                                              groups=batch).reshape(*segments.shape[:2], longest + 1)
    else:
        spectrum = torch.fft.rfft(segments, n=span) * torch.fft.rfft(current, n=span).conj()
        products = torch.fft.irfft(spectrum, n=span)[..., : longest + 1]
    energies = torch.nn.functional.pad(segments.square().cumsum(-1), (1, 0))
    delayed = energies[..., frame: frame + longest + 1] - energies[..., : longest + 1]
    own = current.square().sum(-1, keepdim=True)
    delayed = delayed.clamp_min(0)
    # a lag whose frame is digital silence (the stream's start) scores 0, not its transform's rounding noise
    score = torch.where(delayed > 0, products / torch.sqrt(own * delayed + TINY), 0.0)
    score = score[..., : longest - shortest + 1]                               # periods longest..shortest
    return longest - score.argmax(-1)


def delayed_frames(signal: Tensor, periods: Tensor, hop: int, frame: int, longest: int) -> Tensor:
    """``(B, k, frame)``: each frame of ``signal`` one period earlier."""
    batch, length = signal.shape
    starts = longest - periods + hop * torch.arange(periods.shape[1], device=signal.device)   # (B, k)
    index = starts[..., None] + torch.arange(frame, device=signal.device)
    index = index + length * torch.arange(batch, device=signal.device)[:, None, None]
    return signal.reshape(-1)[index]


def band_correlation(spectrum: Tensor, delayed: Tensor, band_matrix: Tensor,
                     own: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per band: the frame's energy (``own`` when the caller has it), the delayed frame's energy, their
    normalised correlation."""
    if own is None:
        own = torch.view_as_real(spectrum).square().sum(-1) @ band_matrix.T
    other = torch.view_as_real(delayed).square().sum(-1) @ band_matrix.T
    cross = (spectrum * delayed.conj()).real @ band_matrix.T
    return own, other, cross / torch.sqrt(own * other + TINY)


def comb(spectrum: Tensor, delayed: Tensor, energies: tuple[Tensor, Tensor, Tensor], gains: Tensor,
         band_matrix: Tensor, scale: float | Tensor = 1.0) -> Tensor:
    """``spectrum`` plus as much of ``delayed`` as each band's gain and correlation call for, then each
    band scaled back to its energy. Where the correlation exceeds the gain, the delayed frame enters at
    full strength (scaled to the frame's energy); below, less, down to none at zero correlation.
    ``scale`` (one number, or one per band) multiplies that strength."""
    own, other, correlation = energies
    correlation = correlation.clamp_min(0)
    gains = gains.clamp(1e-4, 1.0)
    strength = correlation.square() * (1 - gains.square()) / (1e-3 + gains.square() * (1 - correlation.square()))
    strength = torch.where(correlation > gains, torch.ones_like(strength), strength)
    strength = scale * torch.sqrt(strength.clamp(1e-12, 1.0)) * torch.sqrt(own / (other + TINY))
    mixed = spectrum + (strength @ band_matrix) * delayed
    mixed_energy = torch.view_as_real(mixed).square().sum(-1) @ band_matrix.T
    return mixed * (torch.sqrt((own + SETTLE) / (mixed_energy + SETTLE)) @ band_matrix)
