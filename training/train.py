"""Train a MIMO CNN or GRU denoiser and save a checkpoint the app loads.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.

    python -m training.train --model gru --corpus data/corpus --out models/pretrained/gru.pt
    python -m training.train --model cnn-lab --data data/train.pt --lab --out runs/cnn-lab.pt

Data: ``--data`` takes a lab-format file (list of ``(noisy, clean)`` ``(1, N)``
tensors; ``--val`` another, else 50 pairs are held out at random as in the
lab); ``--corpus`` mixes fresh pairs every epoch from a corpus (folder with
``manifest.json`` or a ``.npz`` pack). ``--lab`` is the lab recipe: L1, SGD
lr 0.5, batch 32, 20 epochs. Recurrent models train with truncated BPTT: the
state is carried across ``--tbptt-ms`` chunks and detached between them.
Writes the best checkpoint (by validation SI-SDR improvement, or by loss with
``--lab``), ``<out>.last.pt`` to resume, a loss-curve PNG and one PNG per epoch
of noisy / clean / estimate on a fixed validation clip.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rtdenoise.errors import OneLineParser, finite_float, require_at_least, require_positive, require_probability
from rtdenoise.models.registry import PRESETS

from training.fitting.distributed import (World, agreed_max, device_of, finish_together, join_world, leave_world,
                                         wrap_for_training)
from training.fitting.epoch_report import EpochRun, report_epoch
from training.fitting.losses import LOSSES, SISDR_WEIGHT, STOI_WEIGHT
from training.fitting.train_config import TrainConfig
from training.fitting.train_data import batches_from_pairs, training_data
from training.fitting.train_steps import (chunk_samples, freeze_all_but, parameter_groups, parse_lr_scale,
                                          scheduled_lr, set_seed, starting_model, train_step)
from training.fitting.validation import selection_score, validate


# corpus mixing: each a share between 0 and 1 -> (option, default, what it is the share of)
MIXING_SHARES = [
    ("--room-probability", 0.5, "with --augment: share of mixtures spoken in a simulated room"),
    ("--clean-probability", 0.0, "with --augment: share of mixtures with no audible noise, so clean speech is left "
                                 "alone"),
    ("--continuous-probability", 0.0, "with --augment: share of mixtures whose speech has every pause cut out (read "
                                      "speech that never leaves the noise alone, as in an audiobook or a talk)"),
    ("--same-noise-probability", 0.0, "with --stream-seconds: share of a stream's pieces whose noise is the piece "
                                      "before's, going on under another speaker or alone (a room's noise while "
                                      "people take turns)"),
    ("--pitch-shift-probability", 0.4, "with --augment: share of mixtures whose voice is shifted in pitch by "
                                       "0.70-0.95 or its inverse"),
    ("--raise-pitch-share", 0.3, "with --augment: of the pitch shifts, the share that raises the voice; the rest "
                                 "lower it"),
]


def check_settings(config: TrainConfig, args: argparse.Namespace) -> None:
    """Refuse settings that would train nothing or fail later (a zero batch, a negative lr, ...)."""
    positive = {"--lr": config.lr, "--batch": config.batch, "--epochs": config.epochs,
                "--steps-per-epoch": config.steps_per_epoch, "--segment-seconds": config.segment_seconds,
                "--tbptt-ms": config.tbptt_ms}
    at_least_zero = {"--stream-seconds": config.stream_seconds, "--max-minutes": args.max_minutes, "--warmup-steps": args.warmup_steps,
                     "--workers": args.workers, "--threads": args.threads,
                     "--suppression-weight": config.suppression_weight, "--stoi-weight": config.stoi_weight,
                     "--sisdr-weight": config.sisdr_weight}
    for option, value in positive.items():
        require_positive(option, value)
    for option, value in at_least_zero.items():
        require_at_least(option, value, 0)
    for option, _, _ in MIXING_SHARES:
        require_probability(option, getattr(args, option[2:].replace("-", "_")))
    if args.diphone_voice_share is not None:
        require_probability("--diphone-voice-share", args.diphone_voice_share)


def run_plan(config: TrainConfig, train_pairs: list | None, val_pairs: list, args: argparse.Namespace,
             world: World) -> dict:
    """What this run will actually do (not the defaults it did not use); ``batch`` is per rank."""
    plan = asdict(config)
    if train_pairs is not None:  # lab-format pairs: an epoch is one pass over them
        plan["steps_per_epoch"] = math.ceil(len(train_pairs) // world.size / config.batch)
        plan["training_pairs"] = len(train_pairs)
        del plan["validation_pairs"], plan["segment_seconds"]
    else:
        del plan["held_out"]
    streams = sum(len(entry) == 3 for entry in val_pairs)
    plan["held_out" if train_pairs is not None and not args.val else "validation_pairs"] = len(val_pairs) - streams
    if streams:
        plan["validation_streams"] = streams
    if args.max_minutes:
        plan["max_minutes"] = args.max_minutes
    if train_pairs is None and args.augment and args.continuous_probability:
        plan["continuous_probability"] = args.continuous_probability
    if train_pairs is None and args.augment:
        plan["pitch_shift_probability"] = args.pitch_shift_probability
        plan["raise_pitch_share"] = args.raise_pitch_share
        if args.diphone_voice_share is not None:
            plan["diphone_voice_share"] = args.diphone_voice_share
    if train_pairs is None and config.stream_seconds and args.same_noise_probability:
        plan["same_noise_probability"] = args.same_noise_probability
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"preset: {', '.join(PRESETS)} (default: gru, or --init's own network)")
    parser.add_argument("--data", type=Path, help="lab-format training pairs (.pt)")
    parser.add_argument("--val", type=Path, help="lab-format validation pairs (.pt)")
    parser.add_argument("--corpus", type=Path, help="corpus folder or .npz pack for on-the-fly mixing")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lab", action="store_true", help="the lab recipe: L1, SGD lr 0.5, batch 32, 20 epochs")
    parser.add_argument("--loss", choices=LOSSES)
    parser.add_argument("--suppression-weight", type=finite_float,
                        help="speech losses: extra cost of removed speech over residual noise (default 2)")
    parser.add_argument("--stoi-weight", type=finite_float,
                        help=f"speech-stoi losses: what a unit of (1 - STOI) costs (default {STOI_WEIGHT:g})")
    parser.add_argument("--sisdr-weight", type=finite_float,
                        help=f"speech losses: what a dB of SI-SDR is worth (default {SISDR_WEIGHT:g})")
    parser.add_argument("--train-only", metavar="PREFIXES",
                        help="train only the parameters whose names start with these (comma-separated, e.g. "
                             "df_head after growing a model: the rest keeps its trained weights)")
    parser.add_argument("--lr-scale", metavar="PREFIX=FACTOR,...",
                        help="these parameters learn at FACTOR times the lr (e.g. df_head=10: a deep filter grown at "
                             "zero learns faster than the trained network under it)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"])
    parser.add_argument("--lr", type=finite_float)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--segment-seconds", type=finite_float)
    parser.add_argument("--tbptt-ms", type=finite_float)
    parser.add_argument("--stream-seconds", type=finite_float,
                        help="corpus training: train on streams this long (e.g. 16) whose speaker, noise, SNR and "
                             "level change every 1.5-6 s, with the state carried through; validation adds streams "
                             "and keeps the checkpoint whose worse figure (fresh clips or streams) is best")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0, help="mixing worker processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--max-minutes", type=finite_float, default=0, help="stop (keeping the best) after this long")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="raise the lr linearly over this many steps (fine-tuning with fresh Adam moments)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    parser.add_argument("--keep-epochs", action="store_true",
                        help="also write each epoch's weights to <out>.e<N>.pt (to average with training.average)")
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights (fine-tuning)")
    parser.add_argument("--augment", action="store_true",
                        help="pass every mixture through a simulated recording chain (room, microphone EQ, band "
                             "limit, noise floor, clipping) and pick voices evenly (corpus training)")
    parser.add_argument("--early-ms", type=finite_float, default=50.0,
                        help="with --augment: how much of the room the target keeps after the direct path "
                             "(default 50 ms; more: the model dries rooms less)")
    parser.add_argument("--snr-max", type=finite_float, default=20.0,
                        help="with --augment: mixtures are drawn at -5 dB up to this SNR (default 20)")
    for option, default, meaning in MIXING_SHARES:
        parser.add_argument(option, type=finite_float, default=default, help=f"{meaning} (default {default})")
    parser.add_argument("--diphone-voice-share", type=finite_float,
                        help="with --augment: share of mixtures spoken by one of the Festival diphone voices "
                             "(default: each voice as often as any other)")
    parser.add_argument("--balance-noise-families", action="store_true",
                        help="with --augment: draw every noise family equally often, then a source within it "
                             "(default: every source equally often)")
    parser.add_argument("--rooms", type=int, default=300,
                        help="with --augment: simulated rooms drawn once at the start (default 300)")
    parser.add_argument("--val-split", default="validation",
                        help="corpus split to validate on (valvoice: voices and noises kept out of training)")
    parser.add_argument("--select-by", choices=["auto", "si_sdr", "pesq", "composite", "loss"], default="auto",
                        help="validation figure that picks the best checkpoint (auto: the loss for L1 and the "
                             "lab recipe, else SI-SDR improvement; pesq: PESQ-WB, needs 16 kHz and the pesq package)")
    parser.add_argument("--plots", type=Path, help="folder for PNGs (default: beside --out)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.model_given, args.model = args.model is not None, args.model or "gru"

    config = TrainConfig(model=args.model)
    if args.lab:
        config = TrainConfig(model=args.model, loss="l1", optimizer="sgd", lr=0.5, batch=32, epochs=20)
    for key in ("loss", "suppression_weight", "stoi_weight", "sisdr_weight", "train_only", "lr_scale", "optimizer",
                "lr", "batch", "epochs", "steps_per_epoch", "segment_seconds", "tbptt_ms", "seed", "stream_seconds"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    if not args.data and not args.corpus:
        parser.error("give --data PAIRS.pt or --corpus FOLDER|PACK.npz")
    try:
        import matplotlib  # noqa: F401  (the loss curves and example plots)
    except ImportError:
        parser.error("training draws its loss curves with matplotlib, which is missing: pip install '.[train]'")
    check_settings(config, args)
    parse_lr_scale(config.lr_scale)  # a malformed --lr-scale stops here, before any audio is loaded
    if args.select_by in ("pesq", "composite"):
        try:
            import pesq  # noqa: F401  (checked now, not after the first epoch)
            import pystoi  # noqa: F401
        except ImportError:
            parser.error(f"--select-by {args.select_by} needs the pesq and pystoi packages (pip install '.[train]')")
    set_seed(config.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    world = join_world(args.device)
    device = device_of(world, args.device)
    try:
        result = train(config, args, world, device)
        finish_together(world)
        return result
    finally:
        leave_world(world)


def train(config: TrainConfig, args: argparse.Namespace, world: World, device: torch.device) -> int:
    """The training run of this rank (rank 0 alone validates, writes and plots)."""
    say = print if world.is_main else (lambda *a, **k: None)
    last_path = args.out.with_name(args.out.stem + ".last.pt")
    resume = torch.load(last_path, map_location="cpu", weights_only=True) if args.resume and last_path.exists() else None
    model = starting_model(config, args, resume, say)
    model = model.to(device).train()
    if config.train_only:
        freeze_all_but(model, config.train_only)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    train_pairs, val_pairs, stream = training_data(config, args, world, say,
                                                   resumed_at=len(resume["history"]) if resume else 0)

    trained = parameter_groups(model, config.lr, config.lr_scale)
    optimizer = (torch.optim.SGD(trained, lr=config.lr) if config.optimizer == "sgd"
                 else torch.optim.AdamW(trained, lr=config.lr, weight_decay=1e-4))
    history: list[dict] = []
    best = -math.inf
    start_epoch = 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        history = resume["history"]
        best = resume["best"]
        start_epoch = len(history)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs),
                                                           last_epoch=start_epoch - 1) \
        if config.optimizer == "adam" else None
    plots = args.plots or args.out.parent / (args.out.stem + "_plots")
    if world.is_main:
        plots.mkdir(parents=True, exist_ok=True)
    trainer = wrap_for_training(model, chunk_samples(model, config), world, device)
    started = time.time() - (history[-1]["elapsed_s"] if history else 0.0)
    plan = run_plan(config, train_pairs, val_pairs, args, world)
    run = EpochRun(model, optimizer, config, args, history, plots, last_path, started, device, plan)
    run_started = time.time()
    written = False  # has this run saved a best checkpoint?
    steps_done = 0  # in this run (the warm-up restarts with a resumed run's fresh process)
    say(f"training {config.model} ({model.num_parameters():,} params) on {device}"
        + (f" x {world.size} ranks" if world.size > 1 else "")
        + f": {json.dumps(plan)}", flush=True)
    if args.init and resume is None and world.is_main:  # a fine-tune must beat where it started, or it writes nothing
        start = validate(model, val_pairs, config, device, with_pesq=args.select_by in ("pesq", "composite"),
                                 with_stoi=args.select_by == "composite")
        best = selection_score(start, args.select_by, config, args.lab)
        say(f"initial weights: val loss {start['loss']:.4f}  val SI-SDR improvement "
              f"{start['si_sdr_improvement']:+.2f}" + (f"  val PESQ-WB {start['pesq']:.3f}" if "pesq" in start else "")
              + (f"  | streams: SI-SDRi {start['stream_si_sdr_improvement']:+.2f}" if "stream_loss" in start else "")
              + (f" PESQ-WB {start['stream_pesq']:.3f} STOI {start['stream_stoi']:.3f}" if "stream_pesq" in start
                 else "")
              + "  (an epoch must beat this to be kept)", flush=True)

    out_of_time = False
    for epoch in range(start_epoch, config.epochs):
        model.train()
        if train_pairs is not None:
            batches = list(batches_from_pairs(train_pairs, config.batch, config.seed, epoch, world))
        else:
            batches = (next(stream) for _ in range(config.steps_per_epoch))
        total = len(batches) if isinstance(batches, list) else config.steps_per_epoch
        losses = []
        bar = tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=args.quiet or not world.is_main,
                   file=sys.stderr, mininterval=5.0)
        for noisy, clean in bar:
            progress = (time.time() - run_started) / (args.max_minutes * 60) if args.max_minutes else 0.0
            progress = agreed_max(progress, world, device)  # every rank stops, and sets its lr, alike
            if progress >= 1.0:
                out_of_time = True
                break
            if scheduler and (args.max_minutes or args.warmup_steps):
                for group, epoch_lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
                    group["lr"] = scheduled_lr(epoch_lr, config.lr * group.get("lr_scale", 1.0),
                                               progress if args.max_minutes else None, steps_done, args.warmup_steps)
            losses.append(train_step(trainer, model, noisy.to(device), clean.to(device), config, optimizer))
            steps_done += 1
            bar.set_postfix(loss=f"{np.nanmean(losses[-50:]):.4f}")
        if scheduler and not args.max_minutes:
            for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
                group["lr"] = lr  # undo the warm-up's scaling: the epoch schedule steps from its own value
            scheduler.step()
        if world.is_main:
            improved, best = report_epoch(run, epoch, losses, val_pairs, best)
            written = written or improved
        if out_of_time or agreed_max(float(args.max_minutes and time.time() - run_started > args.max_minutes * 60),
                                     world, device):
            say(f"stopping after {args.max_minutes} minutes", flush=True)
            break
    if not world.is_main:
        return 0
    if written or (resume is not None and args.out.exists()):
        print(f"best checkpoint: {args.out}", flush=True)
    else:
        if args.init:
            reason = "no epoch beat the initial weights"
        elif args.select_by == "composite" and history and "val_stoi" in history[-1]:
            reason = (f"no epoch kept validation STOI at the noisy input's (last {history[-1]['val_stoi']:.3f} < "
                      f"{history[-1]['val_stoi_noisy']:.3f}; train longer, or --select-by pesq)")
        else:
            reason = "no epoch had a finite validation score"
        print(f"{reason}: {args.out} was not written; the last weights are in {last_path}", flush=True)
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.train"))
