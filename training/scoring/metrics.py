"""Shared scoring of one clip (PESQ-WB, STOI, SI-SDR, level diagnostics), its groups and their means.

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate. Used by evaluate, the
stream evaluation and the fullband scores; imports none of them.
"""
from __future__ import annotations

import numpy as np

from training.scoring.level_diagnostics import level_diagnostics

METRICS = ("pesq", "stoi", "si_sdr", "si_sdr_i")


def si_sdr_db(estimate: np.ndarray, clean: np.ndarray) -> float:
    """Scale-invariant SDR of one clip in dB."""
    estimate, clean = estimate - estimate.mean(), clean - clean.mean()
    target = clean * (estimate @ clean) / (clean @ clean + 1e-12)
    return float(10 * np.log10((target @ target + 1e-12) / ((estimate - target) @ (estimate - target) + 1e-12)))


def score(estimate: np.ndarray, clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """PESQ-WB, STOI, SI-SDR, its improvement over ``noisy`` and the level diagnostics of one 16 kHz clip."""
    from pesq import pesq
    from pystoi import stoi

    try:
        pesq_wb = float(pesq(16000, clean, estimate, "wb"))
    except Exception:  # pesq refuses clips it finds no speech in
        pesq_wb = float("nan")
    sdr = si_sdr_db(estimate, clean)
    return {"pesq": pesq_wb, "stoi": float(stoi(clean, estimate, 16000, extended=False)),
            "si_sdr": sdr, "si_sdr_i": sdr - si_sdr_db(noisy, clean), **level_diagnostics(estimate, clean, noisy)}


def group_keys(meta: dict | None, noisy: np.ndarray, clean: np.ndarray) -> dict[str, str]:
    """The SNR band, noise type, voice and speaker of a clip (the SNR band alone without metadata)."""
    if meta is None:
        snr = 10 * np.log10(np.sum(clean ** 2) / (np.sum((noisy - clean) ** 2) + 1e-12))
        return {"snr": f"{5 * round(snr / 5):+d} dB"}
    sex = meta.get("sex", "unknown").replace("_lowered", "")
    return {"snr": f"{int(round(meta['snr_db'])):+d} dB", "noise": meta.get("noise_type", "?"), "voice": sex,
            "speaker": meta.get("speaker", "?")}


def summarise(rows: list[dict], metrics: tuple[str, ...] = METRICS) -> dict:
    """Means of ``rows`` (one dict per clip) overall and per group."""
    def mean(subset):
        return {m: float(np.nanmean([r[m] for r in subset])) for m in metrics} | {"clips": len(subset)}

    result = {"overall": mean(rows)}
    for key in ("snr", "noise", "voice", "speaker"):
        order = (lambda g: float(g.split()[0])) if key == "snr" else (lambda g: g)
        groups = sorted({r[key] for r in rows if key in r}, key=order)
        if groups:
            result[key] = {g: mean([r for r in rows if r.get(key) == g]) for g in groups}
    return result
