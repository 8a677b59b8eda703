"""PNGs that let people watch training: loss curves and noisy/clean/estimate clips."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: list[dict], path: Path) -> None:
    """Train and validation loss per epoch (and validation SI-SDR improvement)."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_sdr) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_sdr.plot(epochs, [h["val_si_sdr_improvement"] for h in history], color="tab:green")
    ax_sdr.set(xlabel="epoch", ylabel="dB", title="validation SI-SDR improvement")
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
