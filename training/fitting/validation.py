"""Validation during training: fresh pairs and streams scored piece by piece, and the figure
that picks the best checkpoint.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from rtdenoise.models import StreamingModel

from training.fitting.losses import denoising_loss, si_sdr
from training.fitting.train_config import TrainConfig
from training.fitting.train_steps import align, trim_to_hop


def piece_estimates(model: StreamingModel, entry: tuple, device: torch.device):
    """``(estimate, target, noisy)`` of a validation entry, each ``(1, n)`` and lined up: a fresh pair
    ``(noisy, clean)`` gives one; a stream ``(noisy, clean, spans)`` is run whole and gives one per piece
    that holds speech (a piece of noise alone has no SI-SDR)."""
    noisy, clean = trim_to_hop(entry[0].to(device), model.hop), trim_to_hop(entry[1].to(device), model.hop)
    estimate, target = align(model, model(noisy), clean)
    noisy = noisy[..., : target.shape[-1]]
    if len(entry) == 2:
        yield estimate, target, noisy
        return
    for start, end in entry[2]:
        end = min(end, target.shape[-1])
        if end - start >= model.sample_rate // 2 and torch.nan_to_num(target[..., start:end]).square().mean() > 1e-8:
            yield estimate[..., start:end], target[..., start:end], noisy[..., start:end]


@torch.no_grad()
def validate(model: StreamingModel, entries: list, config: TrainConfig, device: torch.device,
             with_pesq: bool = False, with_stoi: bool = False) -> dict:
    """Mean loss, SI-SDR of the estimate and its improvement over the noisy input (and PESQ-WB, STOI if asked)
    over fresh pairs; where ``entries`` also holds streams (``(noisy, clean, spans)``), the same figures over
    their pieces as ``stream_<name>``."""
    model.eval()
    fresh = [e for e in entries if len(e) == 2]
    streams = [e for e in entries if len(e) == 3]
    result = {}
    for prefix, group in (("", fresh), ("stream_", streams)):
        if group:
            pieces = [piece for entry in group for piece in piece_estimates(model, entry, device)]
            result.update({prefix + k: v for k, v in piece_metrics(model, pieces, config, with_pesq, with_stoi).items()})
    model.train()
    return result


def piece_metrics(model: StreamingModel, pieces: list, config: TrainConfig, with_pesq: bool, with_stoi: bool) -> dict:
    """The means of ``validate`` over ``(estimate, target, noisy)`` pieces."""
    totals = {"loss": 0.0, "si_sdr": 0.0, "si_sdr_noisy": 0.0}
    pesq_scores, stoi_pairs = [], []
    for estimate, target, noisy in pieces:
        totals["loss"] += denoising_loss(estimate, target, config.loss_settings, noisy).item()
        target = torch.nan_to_num(target)
        totals["si_sdr"] += si_sdr(estimate, target).mean().item()
        totals["si_sdr_noisy"] += si_sdr(noisy, target).mean().item()
        if with_pesq:
            pesq_scores.append(pesq_wb(estimate, target, model.sample_rate))
        if with_stoi:
            stoi_pairs.append((stoi_of(estimate, target, model.sample_rate), stoi_of(noisy, target, model.sample_rate)))
    result = {k: v / len(pieces) for k, v in totals.items()}
    result["si_sdr_improvement"] = result["si_sdr"] - result["si_sdr_noisy"]
    if with_pesq:
        result["pesq"] = float(np.nanmean(pesq_scores)) if np.isfinite(pesq_scores).any() else math.nan
    if with_stoi:
        result["stoi"], result["stoi_noisy"] = (float(v) for v in np.mean(stoi_pairs, axis=0))
    return result


def stoi_of(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """STOI of one (1, N) pair."""
    from pystoi import stoi

    return float(stoi(target.reshape(-1).double().cpu().numpy(), estimate.reshape(-1).double().cpu().numpy(),
                      sample_rate, extended=False))


def pesq_wb(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """PESQ-WB of one (1, N) pair; NaN where PESQ finds no speech (a silent target)."""
    from pesq import PesqError, pesq

    try:
        return float(pesq(sample_rate, target.reshape(-1).double().cpu().numpy(),
                          estimate.reshape(-1).double().cpu().numpy(), "wb"))
    except PesqError:
        return math.nan


def selection_score(metrics: dict, select_by: str, config: TrainConfig, lab: bool) -> float:
    """The validation figure that picks the best checkpoint (higher is better): with stream validation
    (``stream_`` figures), the worse of the fresh pairs' and the streams' figure."""
    if select_by == "auto":
        select_by = "loss" if lab or config.loss in ("l1", "masked_l1") else "si_sdr"

    def one(prefix: str) -> float:
        figure = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
        if select_by == "pesq":
            return figure["pesq"] if math.isfinite(figure["pesq"]) else -math.inf
        if select_by == "composite":  # PESQ, but never at the cost of intelligibility
            if not math.isfinite(figure["pesq"]) or figure["stoi"] < figure["stoi_noisy"]:
                return -math.inf
            return figure["pesq"]
        return -figure["loss"] if select_by == "loss" else figure["si_sdr_improvement"]

    return min(one(prefix) for prefix in ("", "stream_") if prefix + "loss" in metrics)
