"""The pitch comb filter of :mod:`models.pitch` in numpy, for the band kernel (same maths)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

TINY = np.float32(1e-20)
SETTLE = np.float32(1e-12)


def delayed_spectra(signal: np.ndarray, count: int, hop: int, window: np.ndarray, periods: tuple[int, int]) -> np.ndarray:
    """``(C, k, bins)``: the spectra of the frames of ``signal`` ``(C, longest + frame - hop + k hop)`` one pitch
    period earlier (the period of each frame: the best normalised correlation, shortest..longest samples)."""
    if count == 1:
        return delayed_spectrum_live(signal, window, periods)
    shortest, longest = periods
    frame = window.shape[0]
    span = longest + frame
    segments = sliding_window_view(signal, span, axis=1)[:, ::hop][:, :count]
    current = segments[..., longest:]
    both = np.zeros(segments.shape[:2] + (2, span), np.float32)   # one transform call for both (numpy's FFT
    both[..., 0, :] = segments                                     # calls cost less than scipy's at this size)
    both[..., 1, :frame] = current
    spectra = np.fft.rfft(both, axis=-1)
    products = np.fft.irfft(spectra[..., 0, :] * np.conj(spectra[..., 1, :]), n=span, axis=-1)[..., : longest + 1]
    energies = np.zeros(segments.shape[:2] + (span + 1,), np.float32)
    np.cumsum(np.square(segments), axis=-1, out=energies[..., 1:])
    delayed = np.maximum(energies[..., frame: frame + longest + 1] - energies[..., : longest + 1], 0)
    own = np.square(current).sum(-1, keepdims=True)
    score = np.where(delayed > 0, products / np.sqrt(own * delayed + TINY), 0)  # as models/pitch.py
    period = longest - score[..., : longest - shortest + 1].argmax(-1)                # (C, k)
    starts = longest - period + hop * np.arange(count)
    index = starts[..., None] + np.arange(frame)
    frames = signal[np.arange(signal.shape[0])[:, None, None], index]
    return np.fft.rfft(frames * window, axis=-1)


def delayed_spectrum_live(signal: np.ndarray, window: np.ndarray, periods: tuple[int, int]) -> np.ndarray:
    """:func:`delayed_spectra` of one frame (the live path): the correlations in the time domain,
    a few calls per channel, where the block path's transforms cost more than they save."""
    shortest, longest = periods
    frame = window.shape[0]
    lags = longest - shortest + 1
    frames = np.empty((signal.shape[0], 1, frame), np.float32)
    energies = np.zeros(longest + frame + 1, np.float32)
    for channel, samples in enumerate(signal[:, : longest + frame]):
        current = samples[longest:]
        products = np.correlate(samples[: lags - 1 + frame], current, "valid")   # index m: period longest - m
        np.cumsum(np.square(samples), out=energies[1:])
        delayed = energies[frame: frame + lags] - energies[:lags]                 # energy of the frame m samples on
        np.maximum(delayed, 0, out=delayed)
        score = products / np.sqrt(delayed * np.dot(current, current) + TINY)
        score[delayed == 0] = 0                                                  # as models/pitch.py
        start = score.argmax()
        frames[channel, 0] = samples[start: start + frame]
    frames *= window
    return fft.rfft(frames, axis=-1)


def band_correlation(spectrum: np.ndarray, delayed: np.ndarray, to_bands: np.ndarray,
                     own: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per band: the frame's energy ``own`` (the caller has it), the delayed frame's energy, their
    normalised correlation."""
    other = (delayed.real ** 2 + delayed.imag ** 2) @ to_bands
    cross = (spectrum.real * delayed.real + spectrum.imag * delayed.imag) @ to_bands
    return own, other, cross / np.sqrt(own * other + TINY)


def comb(spectrum: np.ndarray, delayed: np.ndarray, energies: tuple[np.ndarray, ...], gains: np.ndarray,
         to_bins: np.ndarray, scale: float | np.ndarray = 1.0) -> np.ndarray:
    """The frame plus the delayed frame as the gains and correlations call for, each band's energy kept;
    ``scale``: one number, or one per band."""
    own, other, correlation = energies
    correlation = np.maximum(correlation, 0)
    gains = np.minimum(np.maximum(gains, np.float32(1e-4)), np.float32(1.0))  # np.clip's wrapper costs more
    gains2 = np.square(gains)
    strength = np.square(correlation) * (1 - gains2) / (np.float32(1e-3) + gains2 * (1 - np.square(correlation)))
    strength[correlation > gains] = 1
    np.minimum(np.maximum(strength, np.float32(1e-12), out=strength), np.float32(1.0), out=strength)
    strength = np.float32(scale) * np.sqrt(strength) * np.sqrt(own / (other + TINY))
    mixed = spectrum + (strength @ to_bins) * delayed
    mixed_energy = (mixed.real ** 2 + mixed.imag ** 2) @ to_bins.T
    return mixed * (np.sqrt((own + SETTLE) / (mixed_energy + SETTLE)) @ to_bins)
