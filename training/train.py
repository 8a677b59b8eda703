"""Train a MIMO CNN or GRU denoiser and save a checkpoint the app loads.

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
import random
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rtdenoise.errors import finite_float, require_at_least, require_positive
from rtdenoise.models import StreamingModel, build_model, save_checkpoint
from rtdenoise.models.registry import PRESETS, build_preset, read_checkpoint

from .augment import ChainConfig, RecordingChain
from .distributed import (World, agreed_max, device_of, finish_together, join_world, leave_world, shard_indices,
                          wrap_for_training)
from .dataset import Mixer, MixConfig, OnTheFlyDataset, load_corpus_split, load_pairs, random_split
from .stream_mix import StreamConfig, StreamMixer
from .losses import LOSSES, STOI_WEIGHT, LossSettings, denoising_loss, si_sdr
from .plots import plot_example, plot_history
from .warm_start import warm_start


@dataclass
class TrainConfig:
    model: str = "gru"
    loss: str = "mrstft"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch: int = 16
    epochs: int = 30
    steps_per_epoch: int = 200       # on-the-fly mixing only
    segment_seconds: float = 4.0
    tbptt_ms: float = 1000.0
    held_out: int = 50
    seed: int = 0
    grad_clip: float = 5.0
    validation_pairs: int = 64
    suppression_weight: float = 2.0  # speech losses: what removed speech costs beyond residual noise
    stoi_weight: float = STOI_WEIGHT  # speech-stoi losses: what a unit of (1 - STOI) costs
    train_only: str = ""             # comma-separated parameter-name prefixes; empty: train everything
    stream_seconds: float = 0.0      # > 0: train on streams this long whose conditions change (stream_mix.py)

    @property
    def loss_settings(self) -> LossSettings:
        return LossSettings(self.loss, self.suppression_weight, self.stoi_weight)


STREAM_PIECE_SECONDS = 6.0  # the longest piece of a training stream (StreamConfig's default)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def align(model: StreamingModel, estimate: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the model's latency so estimate[n] is compared with clean[n]."""
    lat = model.latency_samples
    return (estimate[..., lat:], clean[..., : clean.shape[-1] - lat]) if lat else (estimate, clean)


def trim_to_hop(x: torch.Tensor, hop: int) -> torch.Tensor:
    return x[..., : x.shape[-1] - x.shape[-1] % hop]


def chunk_samples(model: StreamingModel, config: TrainConfig) -> int | None:
    """Truncated-BPTT chunk for stateful models; None (the whole segment) for the stateless CNN."""
    if model.arch == "mimo_cnn":
        return None
    return max(model.hop, int(config.tbptt_ms / 1000 * model.sample_rate) // model.hop * model.hop)


def train_step(trainer: torch.nn.Module, model: StreamingModel, noisy: torch.Tensor, clean: torch.Tensor,
               config: TrainConfig, optimizer: torch.optim.Optimizer) -> float:
    """One batch through ``trainer`` (the chunk loop, maybe under DistributedDataParallel)."""
    noisy, clean = trim_to_hop(noisy, model.hop), trim_to_hop(clean, model.hop)
    estimate, target = align(model, trainer(noisy), clean)
    loss = denoising_loss(estimate, target, config.loss_settings, noisy[..., : target.shape[-1]])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):  # one bad batch must not spoil the weights
        optimizer.zero_grad(set_to_none=True)
        return math.nan
    optimizer.step()
    return loss.item()


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


def check_settings(config: TrainConfig, args: argparse.Namespace) -> None:
    """Refuse settings that would train nothing or fail later (a zero batch, a negative lr, ...)."""
    positive = {"--lr": config.lr, "--batch": config.batch, "--epochs": config.epochs,
                "--steps-per-epoch": config.steps_per_epoch, "--segment-seconds": config.segment_seconds,
                "--tbptt-ms": config.tbptt_ms}
    at_least_zero = {"--stream-seconds": config.stream_seconds, "--max-minutes": args.max_minutes, "--warmup-steps": args.warmup_steps,
                     "--workers": args.workers, "--threads": args.threads,
                     "--suppression-weight": config.suppression_weight, "--stoi-weight": config.stoi_weight}
    for option, value in positive.items():
        require_positive(option, value)
    for option, value in at_least_zero.items():
        require_at_least(option, value, 0)


def make_model(name: str, resume: dict | None) -> StreamingModel:
    """The preset ``name``, or the network stored in ``resume`` (a checkpoint dict) with its weights."""
    if resume is not None:
        model = build_model(resume["arch"], resume["spec"])
        model.load_state_dict(resume["state_dict"])
        return model
    if name in PRESETS:
        return build_preset(name)
    raise SystemExit(f"unknown model {name!r}; presets: {', '.join(PRESETS)}")


def scheduled_lr(epoch_lr: float, base: float, progress: float | None, steps_done: int, warmup_steps: int) -> float:
    """The lr now: cosine over the time budget when there is one (``progress`` in [0, 1]),
    else the epoch schedule's ``epoch_lr``; times a linear warm-up over ``warmup_steps``."""
    lr = epoch_lr if progress is None else base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr * min(1.0, (steps_done + 1) / warmup_steps) if warmup_steps else lr


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
    return plan


def batches_from_pairs(pairs: list, batch: int, seed: int, epoch: int, world: World = World()):
    """Shuffled batches of lab pairs; under torchrun, this rank's shard of them (``batch`` per rank)."""
    if world.size > 1:
        order = shard_indices(len(pairs), world, seed, epoch)
    else:
        order = list(range(len(pairs)))
        random.Random(seed * 1000 + epoch).shuffle(order)
    for start in range(0, len(order), batch):
        chosen = [pairs[i] for i in order[start:start + batch]]
        length = min(p[0].shape[-1] for p in chosen)
        yield (torch.cat([p[0][..., :length] for p in chosen]), torch.cat([p[1][..., :length] for p in chosen]))


def freeze_all_but(model: StreamingModel, prefixes: str) -> None:
    """Train only the parameters whose names start with one of the comma-separated ``prefixes``."""
    wanted = tuple(p.strip() for p in prefixes.split(",") if p.strip())
    names = [name for name, _ in model.named_parameters()]
    if not any(name.startswith(wanted) for name in names):
        raise SystemExit(f"--train-only: no parameter of {type(model).__name__} starts with {prefixes!r} "
                         f"(they are: {', '.join(sorted({n.split('.')[0] for n in names}))})")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(wanted))


def starting_model(config: TrainConfig, args: argparse.Namespace, resume: dict | None, say) -> StreamingModel:
    """The network to train: resumed, started from ``--init`` (grown into a larger preset when one is named), or fresh."""
    if not args.init or resume is not None:
        return make_model(config.model, resume)
    start = read_checkpoint(args.init)
    if args.model_given and PRESETS.get(config.model, ("", {}))[0] == start["arch"] \
            and PRESETS[config.model][1] != start["spec"]:
        say(f"starting preset {config.model} from the weights of {args.init} "
            "(new inputs and heads at zero: the same output)", flush=True)
        return warm_start(config.model, start)  # e.g. band gains grown into band gains + deep filter
    say(f"starting from the weights of {args.init}", flush=True)
    if not args.model_given:  # its own network: name it as the checkpoint does, not by the default preset
        config.model = start.get("training", {}).get("recipe", {}).get("model", start["arch"])
    return make_model(config.model, start)


def training_data(config: TrainConfig, args: argparse.Namespace, world: World, say) -> tuple[list | None, list, object]:
    """``(training pairs or None, validation pairs, stream of mixed batches or None)``."""
    if args.data:
        pairs, _ = load_pairs(args.data)
        if args.val:
            train_pairs, val_pairs = pairs, load_pairs(args.val)[0]
        else:
            held_out = min(config.held_out, max(1, len(pairs) // 6))  # the lab: 50 of 300
            train_pairs, val_pairs = random_split(pairs, held_out, config.seed)
            say(f"{len(train_pairs)} training pairs, {len(val_pairs)} held out for testing", flush=True)
        stream = None
    else:
        chain = RecordingChain(ChainConfig(room_probability=args.room_probability, early_ms=args.early_ms,
                                           rir_bank=args.rooms)) if args.augment else None
        # streams are made of pieces of at most STREAM_PIECE_SECONDS, mixed at that length and cut
        mix_seconds = max(config.segment_seconds, STREAM_PIECE_SECONDS) if config.stream_seconds else \
            config.segment_seconds
        mix_config = MixConfig(seconds=mix_seconds)
        if args.augment:
            mix_config = MixConfig(seconds=mix_seconds, level_db=(-45.0, -12.0), balance_speakers=True,
                                   pitch_shift_probability=0.4, pitch_factor=(0.7, 0.95),
                                   raise_pitch_probability=0.3, snr_db=(-5.0, args.snr_max),
                                   clean_probability=args.clean_probability,
                                   balance_noise_families=args.balance_noise_families)
        mixer = Mixer(load_corpus_split(args.corpus, "train"), mix_config, chain=chain)
        val_mixer = Mixer(load_corpus_split(args.corpus, args.val_split),
                          MixConfig(seconds=config.segment_seconds, pitch_shift_probability=0.0,
                                    silence_probability=0.0, balance_speakers=args.augment),
                          synthetic=False, chain=chain)
        rng = np.random.default_rng(12345)
        val_pairs = []
        for index in range(config.validation_pairs):
            noisy, clean, _ = val_mixer.mix(rng, snr_db=[-5.0, 0.0, 5.0, 10.0, 15.0][index % 5])
            val_pairs.append((torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None]))
        if args.val:
            val_pairs = load_pairs(args.val)[0]
        source = mixer
        if config.stream_seconds:
            source = StreamMixer(mixer, StreamConfig(seconds=config.stream_seconds))
            val_pairs = val_pairs + validation_streams(val_mixer, config)
        loader = torch.utils.data.DataLoader(OnTheFlyDataset(source, config.seed, rank=world.rank),
                                             batch_size=config.batch,
                                             num_workers=args.workers,
                                             persistent_workers=args.workers > 0)
        stream = iter(loader)
        train_pairs = None
    return train_pairs, val_pairs, stream


def validation_streams(val_mixer: Mixer, config: TrainConfig) -> list:
    """Streams of changing validation pieces, as much audio in all as the fresh validation pairs:
    ``(noisy, clean, spans)`` entries for ``validate``."""
    pieces = Mixer(val_mixer.split, replace(val_mixer.config, seconds=STREAM_PIECE_SECONDS), synthetic=False,
                   chain=val_mixer.chain)
    seconds = 32.0
    count = max(1, round(config.validation_pairs * config.segment_seconds / seconds))
    mixer = StreamMixer(pieces, StreamConfig(seconds=seconds))
    rng = np.random.default_rng(54321)
    streams = []
    for _ in range(count):
        noisy, clean, meta = mixer.mix(rng)
        streams.append((torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None], meta["spans"]))
    return streams


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


def report_epoch(run: EpochRun, epoch: int, losses: list, val_pairs: list, best: float) -> tuple[bool, float]:
    """Validate, keep the checkpoint if it is the best so far, save the resumable state, print and plot.
    Returns (improved, best)."""
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
                        training={"recipe": asdict(config), "epochs": epoch + 1,
                                  "data": str(args.data or args.corpus), "seconds": round(record["elapsed_s"])},
                        metrics={"validation": metrics},
                        notes=f"{config.model} trained {epoch + 1} epochs with {config.loss}")
    save_checkpoint(model, run.last_path, name=args.out.stem, trained=True, optimizer=run.optimizer.state_dict(),
                    history=run.history, best=best, training={"recipe": asdict(config)})
    if args.keep_epochs:  # every epoch's weights, for training.average
        save_checkpoint(model, args.out.with_name(f"{args.out.stem}.e{epoch + 1}.pt"), name=args.out.stem,
                        trained=True, training={"recipe": asdict(config), "epochs": epoch + 1},
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--train-only", metavar="PREFIXES",
                        help="train only the parameters whose names start with these (comma-separated, e.g. "
                             "df_head after growing a model: the rest keeps its trained weights)")
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
    parser.add_argument("--room-probability", type=finite_float, default=0.5,
                        help="with --augment: share of mixtures spoken in a simulated room (default 0.5)")
    parser.add_argument("--early-ms", type=finite_float, default=50.0,
                        help="with --augment: how much of the room the target keeps after the direct path "
                             "(default 50 ms; more: the model dries rooms less)")
    parser.add_argument("--snr-max", type=finite_float, default=20.0,
                        help="with --augment: mixtures are drawn at -5 dB up to this SNR (default 20)")
    parser.add_argument("--clean-probability", type=finite_float, default=0.0,
                        help="with --augment: share of mixtures with no audible noise, so clean speech is left alone")
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
    for key in ("loss", "suppression_weight", "stoi_weight", "train_only", "optimizer", "lr", "batch", "epochs",
                "steps_per_epoch", "segment_seconds", "tbptt_ms", "seed", "stream_seconds"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    if not args.data and not args.corpus:
        parser.error("give --data PAIRS.pt or --corpus FOLDER|PACK.npz")
    check_settings(config, args)
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

    train_pairs, val_pairs, stream = training_data(config, args, world, say)

    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
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
    run = EpochRun(model, optimizer, config, args, history, plots, last_path, started, device)
    run_started = time.time()
    written = False  # has this run saved a best checkpoint?
    steps_done = 0  # in this run (the warm-up restarts with a resumed run's fresh process)
    say(f"training {config.model} ({model.num_parameters():,} params) on {device}"
        + (f" x {world.size} ranks" if world.size > 1 else "")
        + f": {json.dumps(run_plan(config, train_pairs, val_pairs, args, world))}", flush=True)
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
                for group in optimizer.param_groups:
                    group["lr"] = scheduled_lr(scheduler.get_last_lr()[0], config.lr,
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
