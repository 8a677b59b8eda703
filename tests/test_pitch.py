"""The pitch comb filter (models/pitch.py): it finds a voice's period and cleans between its harmonics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtdenoise.kernels import pitch_comb
from rtdenoise.models.bands import erb_band_matrix
from rtdenoise.models.pitch import band_correlation, comb, delayed_frames, pitch_periods

RATE, HOP, FRAME, SHORTEST, LONGEST = 16000, 160, 320, 20, 256


def harmonic(f0: float, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE)) / RATE
    return sum(torch.sin(2 * math.pi * f0 * h * t) / h for h in range(1, 20) if f0 * h < RATE / 2)


def frames_of(signal: torch.Tensor, count: int) -> torch.Tensor:
    return signal[:, LONGEST:].unfold(-1, FRAME, HOP)[:, :count]


def test_the_search_finds_the_period_and_never_looks_ahead():
    voice = harmonic(200.0)[None]                                  # period 80 samples
    count = (voice.shape[1] - LONGEST - FRAME) // HOP + 1
    periods = pitch_periods(voice, count, HOP, FRAME, SHORTEST, LONGEST)
    assert (periods % 80 == 0).all() and (periods >= 80).all()      # the period or a multiple: never a fraction
    later = voice.clone()
    later[:, LONGEST + FRAME:] = torch.randn_like(later[:, LONGEST + FRAME:])  # change what follows frame 0
    assert pitch_periods(later, 1, HOP, FRAME, SHORTEST, LONGEST)[0, 0] == periods[0, 0]


def test_a_silent_past_is_never_taken_for_the_period():
    """At a stream's start the history is digital silence (every frame 160+ samples back is zeros): the
    voice's period is found in what there is, the same by the transform (model) and in the time domain
    (the live kernel), not in the transform's rounding noise over the silence."""
    voice = harmonic(200.0)[None]
    voice[:, : LONGEST + HOP] = 0                      # the first frame: half silence, half voice
    window = torch.hann_window(FRAME, periodic=True).sqrt()
    period = pitch_periods(voice, 1, HOP, FRAME, SHORTEST, LONGEST)
    assert period[0, 0] == 80
    model = torch.fft.rfft(delayed_frames(voice, period, HOP, FRAME, LONGEST) * window)
    live = pitch_comb.delayed_spectra(voice[:, : LONGEST + FRAME].numpy(), 1, HOP, window.numpy(), (SHORTEST, LONGEST))
    assert np.abs(live - model.numpy()).max() < 1e-3 * np.abs(live).max()


def test_the_comb_removes_noise_between_harmonics_and_keeps_the_bands_energy():
    torch.manual_seed(0)
    voice = harmonic(200.0)
    noisy = (voice + 0.3 * torch.randn_like(voice))[None]
    count = (noisy.shape[1] - LONGEST - FRAME) // HOP + 1
    window = torch.hann_window(FRAME, periodic=True).sqrt()
    bands = erb_band_matrix(FRAME // 2 + 1, RATE, 32)
    spectrum = torch.fft.rfft(frames_of(noisy, count) * window)
    periods = pitch_periods(noisy, count, HOP, FRAME, SHORTEST, LONGEST)
    delayed = torch.fft.rfft(delayed_frames(noisy, periods, HOP, FRAME, LONGEST) * window)
    energies = band_correlation(spectrum, delayed, bands)
    combed = comb(spectrum, delayed, energies, torch.full((1, count, 32), 0.5), bands)
    band_energy = torch.view_as_real(combed).square().sum(-1) @ bands.T
    # each band is scaled back to its energy through the overlapping triangles, so only nearly
    assert abs(float(band_energy.sum() / energies[0].sum()) - 1) < 0.02
    ratio = band_energy / energies[0]
    assert float((ratio - 1).abs().median()) < 0.05, float((ratio - 1).abs().median())
    clean = torch.fft.rfft(frames_of(voice[None].expand(1, -1).contiguous(), count) * window)
    def between(spec):  # energy midway between the harmonics (bins 4h + 2: 200 Hz over 50 Hz bins) over at them
        power = spec.abs().square()[..., 4:152]
        return float(power[..., 2::4].sum() / power[..., ::4].sum())
    assert between(clean) < 0.01
    assert between(combed) < 0.85 * between(spectrum)  # one tap: at most 3 dB between the harmonics


def test_the_numpy_comb_is_the_torch_comb():
    torch.manual_seed(1)
    noisy = (harmonic(140.0) + 0.2 * torch.randn(8000))[None]
    count = (noisy.shape[1] - LONGEST - FRAME) // HOP + 1
    window = torch.hann_window(FRAME, periodic=True).sqrt()
    periods = pitch_periods(noisy, count, HOP, FRAME, SHORTEST, LONGEST)
    delayed = torch.fft.rfft(delayed_frames(noisy, periods, HOP, FRAME, LONGEST) * window)
    fast = pitch_comb.delayed_spectra(noisy.numpy(), count, HOP, window.numpy(), (SHORTEST, LONGEST))
    assert np.abs(fast - delayed.numpy()).max() < 1e-3 * np.abs(fast).max()
    two = np.stack([noisy[0].numpy(), 0.5 * noisy[0].flip(0).numpy()])  # the live path: one frame per call
    live = np.concatenate([pitch_comb.delayed_spectra(two[:, j * HOP: j * HOP + LONGEST + FRAME], 1, HOP,
                                                      window.numpy(), (SHORTEST, LONGEST)) for j in range(count)], 1)
    block = pitch_comb.delayed_spectra(two, count, HOP, window.numpy(), (SHORTEST, LONGEST))
    assert np.abs(live - block).max() < 1e-3 * np.abs(block).max()
    assert np.abs(live[0] - delayed.numpy()[0]).max() < 1e-3 * np.abs(fast).max()


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_silent_bands_give_finite_gradients():
    """Digital silence (a band with no energy at all) makes no NaN anywhere in the backward pass (a layer
    that scaled the comb's strength would have caught it), and the gains' gradient is finite."""
    bands = erb_band_matrix(FRAME // 2 + 1, RATE, 32)
    spectrum = torch.zeros(1, 3, FRAME // 2 + 1, dtype=torch.complex64)
    spectrum[:, 1, :40] = 1.0 + 0.5j                                         # one frame with low bins only
    delayed = 0.8 * spectrum
    gains = torch.full((1, 3, 32), 0.3, requires_grad=True)
    combed = comb(spectrum, delayed, band_correlation(spectrum, delayed, bands), gains, bands)
    with torch.autograd.detect_anomaly():  # raises at the first backward function that returns NaN
        (combed.abs().square().sum() + (combed * (gains @ bands)).abs().sum()).backward()
    assert torch.isfinite(gains.grad).all()
