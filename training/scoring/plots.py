"""PNGs that let people watch training: loss curves and noisy/clean/estimate clips.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: list[dict], path: Path) -> None:
    """Train and validation loss per epoch, validation SI-SDR improvement (and PESQ-WB when scored)."""
    epochs = [h["epoch"] for h in history]
    with_pesq = all("val_pesq" in h for h in history)
    fig, axes = plt.subplots(1, 3 if with_pesq else 2, figsize=(15 if with_pesq else 10, 3.5))
    ax_loss, ax_sdr = axes[0], axes[1]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    with_streams = all("val_stream_loss" in h for h in history)  # stream validation beside the fresh clips
    ax_sdr.plot(epochs, [h["val_si_sdr_improvement"] for h in history], marker="o", color="tab:green",
                label="fresh clips")
    if with_streams:
        ax_sdr.plot(epochs, [h["val_stream_si_sdr_improvement"] for h in history], marker="s", color="tab:olive",
                    label="streams")
        ax_sdr.legend()
    ax_sdr.set(xlabel="epoch", ylabel="dB", title="validation SI-SDR improvement")
    if with_pesq:
        axes[2].plot(epochs, [h["val_pesq"] for h in history], marker="o", color="tab:purple", label="fresh clips")
        if with_streams and all("val_stream_pesq" in h for h in history):
            axes[2].plot(epochs, [h["val_stream_pesq"] for h in history], marker="s", color="tab:pink",
                         label="streams")
            axes[2].legend()
        axes[2].set(xlabel="epoch", ylabel="PESQ-WB", title="validation PESQ-WB")
    for ax in axes:  # whole epochs only, even for a run of one or two
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_example(noisy, clean, estimate, latency: int, path: Path, title: str) -> None:
    """Noisy, clean and estimate (latency removed) of one clip, stacked."""
    noisy, clean, estimate = (np.asarray(x).reshape(-1) for x in (noisy, clean, estimate))
    estimate = estimate[latency:]
    length = min(len(noisy), len(clean), len(estimate))
    t = np.arange(length) / 16000
    fig, axes = plt.subplots(3, 1, figsize=(10, 5), sharex=True, sharey=True)
    for ax, signal, name, colour in zip(axes, (noisy, clean, estimate), ("noisy", "clean", "estimate"),
                                        ("tab:red", "tab:blue", "tab:green")):
        ax.plot(t, signal[:length], lw=0.5, color=colour)
        ax.set_ylabel(name)
    axes[0].set_title(title)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_snr_bands(results: dict, path: Path) -> None:
    """PESQ-WB and SI-SDR improvement per SNR band, one line per system (from ``training.evaluate``)."""
    bands = list(next(iter(results.values()))["snr"])
    x = [float(band.split()[0]) for band in bands]
    fig, (ax_pesq, ax_sdr) = plt.subplots(1, 2, figsize=(11, 4))
    for name, result in results.items():
        ax_pesq.plot(x, [result["snr"][b]["pesq"] for b in bands], marker="o", label=name)
        ax_sdr.plot(x, [result["snr"][b]["si_sdr_i"] for b in bands], marker="o", label=name)
    ax_pesq.set(xlabel="input SNR (dB)", ylabel="PESQ-WB", title="PESQ-WB by SNR band")
    ax_sdr.set(xlabel="input SNR (dB)", ylabel="dB", title="SI-SDR improvement by SNR band")
    ax_sdr.axhline(0, color="grey", lw=0.8)
    for ax in (ax_pesq, ax_sdr):
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    ax_pesq.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_long_term_spectra(pair, systems: dict, rate: int, path: Path, title: str = "") -> None:
    """Long-term spectra (Welch, dB) of one mixture: noisy, clean and each system's output, on a log axis."""
    from scipy.signal import welch

    noisy, clean = (np.asarray(t, np.float64).reshape(-1) for t in pair)
    curves = {"noisy": noisy, "clean": clean}
    curves.update({name: np.asarray(run(noisy.astype(np.float32)), np.float64)[: len(clean)]
                   for name, run in systems.items()})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    floor = 0.0
    for name, audio in curves.items():
        freqs, power = welch(audio, rate, nperseg=2048)
        smooth = np.convolve(power, np.ones(5) / 5, "same")  # ~120 Hz wide: readable on a log axis
        style = {"noisy": dict(color="0.55", linestyle="--"), "clean": dict(color="k", linewidth=2)}.get(name, {})
        db = 10 * np.log10(smooth[1:] + 1e-20)
        floor = min(floor, float(np.percentile(db, 2)))
        ax.semilogx(freqs[1:], db, label=name, **style)
    ax.set_ylim(bottom=max(floor, ax.get_ylim()[1] - 100))
    ax.axvspan(8000, 20000, color="tab:orange", alpha=0.08, label="8-20 kHz")
    ax.set_xlim(50, rate / 2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power spectral density (dB)")
    ax.set_title(title or f"long-term spectra at {rate} Hz")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
