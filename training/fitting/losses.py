"""Training losses: L1 (lab), NaN-masked L1 (seed 2), SI-SDR, multi-resolution STFT and STOI.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from training.fitting.stoi_loss import stoi


def l1(estimate: Tensor, clean: Tensor) -> Tensor:
    return (estimate - clean).abs().mean()


def masked_l1(estimate: Tensor, clean: Tensor) -> Tensor:
    """L1 over the samples whose target is present (NaN marks a gap in the target)."""
    present = torch.isfinite(clean)
    if not present.any():
        return estimate.sum() * 0.0
    return (estimate[present] - clean[present]).abs().mean()


def si_sdr(estimate: Tensor, clean: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SDR in dB per signal, ``(B, N) -> (B,)``."""
    estimate = estimate - estimate.mean(-1, keepdim=True)
    clean = clean - clean.mean(-1, keepdim=True)
    scale = (estimate * clean).sum(-1, keepdim=True) / (clean.square().sum(-1, keepdim=True) + eps)
    target = scale * clean
    noise = estimate - target
    return 10 * torch.log10((target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps))


def multi_resolution_stft(estimate: Tensor, clean: Tensor,
                          sizes: tuple[int, ...] = (256, 512, 1024), gamma: float = 0.3) -> Tensor:
    """Compressed-magnitude spectral distance at several resolutions (|X|^0.3)."""
    total = estimate.new_zeros(())
    for size in sizes:
        window = torch.hann_window(size, device=estimate.device)
        spec = [torch.stft(x, size, size // 4, window=window, return_complex=True).abs().clamp_min(1e-8) ** gamma
                for x in (estimate, clean)]
        total = total + (spec[0] - spec[1]).square().mean() + (spec[0] - spec[1]).abs().mean()
    return total / len(sizes)


def speech_preserving(estimate: Tensor, clean: Tensor, sizes: tuple[int, ...] = (256, 512, 1024),
                      gamma: float = 0.3, suppression_weight: float = 2.0, per_item: bool = False) -> Tensor:
    """Compressed magnitude + compressed complex MR-STFT, with removed speech costing extra.

    Over-suppression (estimate quieter than the clean speech in a bin) costs
    ``1 + suppression_weight`` times what residual noise costs: losing speech hurts
    intelligibility more than leaving a little noise. ``per_item``: one value per signal ``(B,)``.
    """
    total = estimate.new_zeros(estimate.shape[:1] if per_item else ())
    reduce = (lambda x: x.mean((-2, -1))) if per_item else (lambda x: x.mean())
    for size in sizes:
        window = torch.hann_window(size, device=estimate.device)
        est, ref = (torch.stft(x, size, size // 4, window=window, return_complex=True) for x in (estimate, clean))
        est_mag, ref_mag = (z.abs().clamp_min(1e-8) ** gamma for z in (est, ref))
        difference = est_mag - ref_mag
        magnitude = difference.square() + suppression_weight * torch.relu(-difference).square()
        complex_term = (est_mag * est / est.abs().clamp_min(1e-8) - ref_mag * ref / ref.abs().clamp_min(1e-8))
        total = total + reduce(magnitude) + 0.3 * reduce(complex_term.abs().square())
    return total / len(sizes)


def mask_nan(tensor: Tensor) -> Tensor:
    """Replace NaN gaps by zeros (for losses that cannot mask)."""
    return torch.nan_to_num(tensor, nan=0.0)


LOSSES = ("l1", "masked_l1", "sisdr", "mrstft", "speech", "speech-stoi", "speech-stoi-relative")
STOI_WEIGHT = 10.0  # (1 - STOI) of a noisy input is ~0.13 where the speech loss is ~3
SISDR_WEIGHT = 0.01  # what a dB of SI-SDR is worth in the speech losses (a few per cent of the loss)


def relative_speech_loss(estimate: Tensor, clean: Tensor, noisy: Tensor, suppression_weight: float) -> Tensor:
    """``speech_preserving`` with each mixture weighted by 1 / sqrt(the noisy input's own loss) (mean weight 1):
    quiet or nearly clean mixtures count as much as loud, noisy ones, whose errors are larger in absolute terms."""
    per_item = speech_preserving(estimate, clean, suppression_weight=suppression_weight, per_item=True)
    with torch.no_grad():
        start = speech_preserving(noisy, clean, suppression_weight=suppression_weight, per_item=True)
        weights = (start + 0.1 * start.mean() + 1e-12).rsqrt()
        weights = weights / weights.mean()
    return (weights * per_item).mean()


@dataclass(frozen=True)
class LossSettings:
    """Which loss (one of ``LOSSES``) and its weights: ``suppression_weight`` as in
    ``speech_preserving``, ``stoi_weight`` what a unit of (1 - STOI) costs in the speech-stoi losses,
    ``sisdr_weight`` what a dB of SI-SDR is worth in the speech losses."""

    name: str = "speech"
    suppression_weight: float = 2.0
    stoi_weight: float = STOI_WEIGHT
    sisdr_weight: float = SISDR_WEIGHT


def denoising_loss(estimate: Tensor, clean: Tensor, settings: LossSettings, noisy: Tensor | None = None) -> Tensor:
    """The loss ``settings`` names.

    mrstft: MR-STFT + SI-SDR; speech: speech_preserving + SI-SDR; speech-stoi: speech plus
    a differentiable STOI term, so that intelligibility itself is trained for; speech-stoi-relative:
    the same with each mixture's speech term relative to its noisy input's (``noisy``, lined up with ``clean``).
    """
    name, suppression_weight = settings.name, settings.suppression_weight
    if name == "l1":
        return l1(estimate, clean)
    if name == "masked_l1":
        return masked_l1(estimate, clean)
    clean = mask_nan(clean)
    if name == "sisdr":
        return -si_sdr(estimate, clean).mean()
    if name == "mrstft":
        # SI-SDR only where there is speech: on a silent target it is -inf and its
        # gradient would swamp everything else.
        voiced = clean.square().mean(-1) > 1e-8
        sdr = si_sdr(estimate[voiced], clean[voiced]).clamp(max=40).mean() if voiced.any() else 0.0
        return multi_resolution_stft(estimate, clean) - 0.05 * sdr
    if name in ("speech", "speech-stoi", "speech-stoi-relative"):
        voiced = clean.square().mean(-1) > 1e-8
        sdr = si_sdr(estimate[voiced], clean[voiced]).clamp(max=40).mean() if voiced.any() else 0.0
        if name == "speech-stoi-relative":
            if noisy is None:
                raise ValueError("loss speech-stoi-relative needs the noisy input")
            speech = relative_speech_loss(estimate, clean, mask_nan(noisy), suppression_weight)
        else:
            speech = speech_preserving(estimate, clean, suppression_weight=suppression_weight)
        total = 10 * speech - settings.sisdr_weight * sdr
        if name != "speech" and voiced.any():
            total = total + settings.stoi_weight * (1 - stoi(estimate[voiced], clean[voiced]).mean())
        return total
    raise ValueError(f"unknown loss {name!r} ({', '.join(LOSSES)})")
