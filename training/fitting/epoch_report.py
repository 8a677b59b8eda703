"""The end of an epoch: validate, keep the best checkpoint and the resumable state, print and plot.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtdenoise.models import StreamingModel, save_checkpoint

from training.fitting.train_config import TrainConfig
from training.fitting.train_steps import trim_to_hop
from training.fitting.validation import selection_score, validate


@dataclass
class EpochRun:
    """What rank 0 needs to judge, save and show an epoch."""
    model: StreamingModel
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    args: argparse.Namespace
    history: list
    plots: Path
    last_path: Path
    started: float
    device: torch.device
    recipe: dict  # what this run actually does (train.run_plan), stored in every checkpoint it writes


def report_epoch(run: EpochRun, epoch: int, losses: list, val_pairs: list, best: float) -> tuple[bool, float]:
    """Validate, keep the checkpoint if it is the best so far, save the resumable state, print and plot.
    Returns (improved, best)."""
    from training.scoring.plots import plot_example, plot_history  # matplotlib: the train extra, checked by train.main

    model, config, args = run.model, run.config, run.args
    metrics = validate(model, val_pairs, config, run.device, with_pesq=args.select_by in ("pesq", "composite"),
                       with_stoi=args.select_by == "composite")
    skipped = int(np.isnan(losses).sum())
    if skipped:
        print(f"epoch {epoch + 1}: {skipped} of {len(losses)} steps skipped (loss or gradient not finite)", flush=True)
    record = {"epoch": epoch + 1, "train_loss": float(np.nanmean(losses)), **{f"val_{k}": v for k, v in metrics.items()},
              "elapsed_s": time.time() - run.started, "skipped_steps": skipped}
    run.history.append(record)
    score = selection_score(metrics, args.select_by, config, args.lab)
    improved = score > best
    if improved:
        best = score
        save_checkpoint(model, args.out, name=args.out.stem, trained=True,
                        training={"recipe": run.recipe, "epochs": epoch + 1,
                                  "data": str(args.data or args.corpus), "seconds": round(record["elapsed_s"])},
                        metrics={"validation": metrics},
                        notes=f"{config.model} trained {epoch + 1} epochs with {config.loss}")
    save_checkpoint(model, run.last_path, name=args.out.stem, trained=True, optimizer=run.optimizer.state_dict(),
                    history=run.history, best=best, training={"recipe": run.recipe})
    if args.keep_epochs:  # every epoch's weights, for training.average
        save_checkpoint(model, args.out.with_name(f"{args.out.stem}.e{epoch + 1}.pt"), name=args.out.stem,
                        trained=True, training={"recipe": run.recipe, "epochs": epoch + 1},
                        metrics={"validation": metrics})
    print(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f}  val loss {metrics['loss']:.4f}  "
          f"val SI-SDR {metrics['si_sdr']:.2f} dB (noisy {metrics['si_sdr_noisy']:.2f}, "
          f"improvement {metrics['si_sdr_improvement']:+.2f})"
          + (f"  val PESQ-WB {metrics['pesq']:.3f}" if "pesq" in metrics else "")
          + (f"  val STOI {metrics['stoi']:.3f} (noisy {metrics['stoi_noisy']:.3f})" if "stoi" in metrics else "")
          + (f"  | streams: SI-SDRi {metrics['stream_si_sdr_improvement']:+.2f}" if "stream_loss" in metrics else "")
          + (f" PESQ-WB {metrics['stream_pesq']:.3f}" if "stream_pesq" in metrics else "")
          + (f" STOI {metrics['stream_stoi']:.3f} (noisy {metrics['stream_stoi_noisy']:.3f})"
             if "stream_stoi" in metrics else "")
          + ("  *best" if improved else ""), flush=True)
    plot_history(run.history, run.plots / "loss_curve.png")
    noisy, clean = val_pairs[0]
    with torch.no_grad():
        model.eval()
        estimate = model(trim_to_hop(noisy.to(run.device), model.hop)).cpu()
        model.train()
    plot_example(noisy, clean, estimate, model.latency_samples, run.plots / f"epoch_{epoch + 1:03d}.png",
                 title=f"{config.model} epoch {epoch + 1}")
    return improved, best
