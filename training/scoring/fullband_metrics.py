"""Fullband scores (``training.evaluate`` on a 48 kHz set such as ``training.fullband_set``'s).

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate.

Per clip and system, at the set's rate:

* ``si_sdr_i``: fullband SI-SDR improvement;
* ``hb_sdr_i``: SDR improvement in the high band (8-20 kHz), both signals band-passed alike;
* ``lsd_low`` / ``lsd_high``: log-spectral distance (dB) to the clean speech in 0-8 / 8-20 kHz,
  over the frames where the clean speech is active in that band;
* ``retention``: the clean speech alone through the system, its 8-20 kHz level change (dB; 0 is
  perfect, within ±2 dB is the goal);
* ``noise_removal``: the noise alone through the system, how much its 8-20 kHz level falls (dB);
* ``pesq`` / ``stoi``: PESQ-WB and STOI of the output taken down to 16 kHz, and ``pesq16`` /
  ``stoi16`` of the same system run on the 16 kHz downsample (the 16 kHz path, for comparison).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

HIGH_BAND = (8000.0, 20000.0)
LOW_BAND = (0.0, 8000.0)
FULLBAND_METRICS = ("si_sdr_i", "hb_sdr_i", "lsd_low", "lsd_high", "retention", "noise_removal",
                    "pesq", "stoi", "pesq16", "stoi16")
LSD_FRAME = 2048
ACTIVE_DB = 50.0  # a frame counts in a band when its clean energy there is within this of the loudest frame's


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(np.asarray(audio, np.float64), ratio.numerator, ratio.denominator)


def band_pass(audio: np.ndarray, rate: int, band: tuple[float, float]) -> np.ndarray:
    """Zero-phase brick-wall band-pass (one FFT over the clip)."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    spectrum[(freqs < band[0]) | (freqs >= band[1])] = 0
    return np.fft.irfft(spectrum, n=len(audio))


def band_level_db(audio: np.ndarray, rate: int, band: tuple[float, float] = HIGH_BAND) -> float:
    return float(10 * np.log10(np.sum(band_pass(audio, rate, band) ** 2) + 1e-20))


def sdr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10((reference @ reference + 1e-20) / ((estimate - reference) @ (estimate - reference)
                                                                  + 1e-20)))


def log_spectral_distance(estimate: np.ndarray, clean: np.ndarray, rate: int, band: tuple[float, float]) -> float:
    """RMS over bins of the dB difference of the power spectra, averaged over the active frames."""
    from scipy.signal import stft

    freqs, _, clean_spec = stft(clean, rate, nperseg=LSD_FRAME, noverlap=LSD_FRAME // 2)
    _, _, estimate_spec = stft(estimate, rate, nperseg=LSD_FRAME, noverlap=LSD_FRAME // 2)
    rows = (freqs >= band[0]) & (freqs < band[1])
    clean_power = np.abs(clean_spec[rows]) ** 2 + 1e-12
    estimate_power = np.abs(estimate_spec[rows]) ** 2 + 1e-12
    frame_db = 10 * np.log10(clean_power.sum(0))
    active = frame_db > frame_db.max() - ACTIVE_DB
    difference = 10 * np.log10(estimate_power[:, active] / clean_power[:, active])
    return float(np.mean(np.sqrt(np.mean(difference ** 2, axis=0))))


def score_fullband(system, system16, noisy: np.ndarray, clean: np.ndarray, rate: int) -> dict[str, float]:
    """Every figure of the module docstring for one clip; ``system16`` runs the same denoiser at 16 kHz."""
    from training.scoring.metrics import score, si_sdr_db

    noise = noisy - clean
    estimate = np.asarray(system(noisy.astype(np.float32)), np.float64)[: len(clean)]
    speech_alone = np.asarray(system(clean.astype(np.float32)), np.float64)[: len(clean)]
    noise_alone = np.asarray(system(noise.astype(np.float32)), np.float64)[: len(clean)]
    high = [band_pass(x, rate, HIGH_BAND) for x in (estimate, noisy, clean)]
    clean16, noisy16 = resample(clean, rate, 16000), resample(noisy, rate, 16000)
    at16 = score(resample(estimate, rate, 16000)[: len(clean16)], clean16, noisy16)
    path16 = np.asarray(system16(noisy16.astype(np.float32)), np.float64)[: len(clean16)]
    own16 = score(path16, clean16, noisy16)
    return {
        "si_sdr_i": si_sdr_db(estimate, clean) - si_sdr_db(noisy, clean),
        "hb_sdr_i": sdr_db(high[0], high[2]) - sdr_db(high[1], high[2]),
        "lsd_low": log_spectral_distance(estimate, clean, rate, LOW_BAND),
        "lsd_high": log_spectral_distance(estimate, clean, rate, HIGH_BAND),
        "retention": band_level_db(speech_alone, rate) - band_level_db(clean, rate),
        "noise_removal": band_level_db(noise, rate) - band_level_db(noise_alone, rate),
        "pesq": at16["pesq"], "stoi": at16["stoi"], "pesq16": own16["pesq"], "stoi16": own16["stoi"],
    }


def print_fullband_table(results: dict, rate: int) -> None:
    print(f"\nfullband at {rate} Hz (high band 8-20 kHz; PESQ-WB/STOI on the 16 kHz downsample, "
          f"and of the 16 kHz path)")
    header = ("SI-SDRi", "HB SDRi", "LSD 0-8k", "LSD 8-20k", "HB keep", "HB noise-", "PESQ-WB", "STOI",
              "PESQ@16k", "STOI@16k")
    width = max(16, *(len(name) + 2 for name in results))
    print(f"{'system':<{width}}" + "".join(f"{h:>10}" for h in header))
    for name, result in results.items():
        overall = result["overall"]
        print(f"{name:<{width}}" + "".join(f"{overall[m]:>10.2f}" if m not in ("stoi", "stoi16") else
                                           f"{overall[m]:>10.3f}" for m in FULLBAND_METRICS))
