"""One training step and what sets it up: the model to start from, the lr schedule, frozen weights.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.
"""
from __future__ import annotations

import argparse
import math
import random

import numpy as np
import torch

from rtdenoise.models import StreamingModel, build_model
from rtdenoise.models.registry import PRESETS, build_preset, read_checkpoint

from training.fitting.losses import denoising_loss
from training.fitting.train_config import TrainConfig
from training.warm_start import warm_start


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


def parse_lr_scale(text: str) -> dict[str, float]:
    """``"df_head=10,across=2"`` -> ``{"df_head": 10.0, "across": 2.0}`` (a clear error for anything else)."""
    scales: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        prefix, _, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = math.nan
        if not prefix.strip() or not math.isfinite(value) or value <= 0:
            raise SystemExit(f"--lr-scale: {item!r} is not PREFIX=FACTOR with a positive FACTOR")
        scales[prefix.strip()] = value
    return scales


def parameter_groups(model: StreamingModel, lr: float, lr_scale: str) -> list[dict]:
    """The trainable parameters in optimizer groups: those named by ``lr_scale`` (see :func:`parse_lr_scale`;
    the first matching prefix wins) at their factor times ``lr``, the rest at ``lr``; each group keeps its
    ``lr_scale`` so that the schedule can scale it too."""
    scales = parse_lr_scale(lr_scale)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    for prefix in scales:
        if not any(name.startswith(prefix) for name, _ in named):
            raise SystemExit(f"--lr-scale: no trained parameter of {type(model).__name__} starts with {prefix!r}")
    by_scale: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in named:
        scale = next((factor for prefix, factor in scales.items() if name.startswith(prefix)), 1.0)
        by_scale.setdefault(scale, []).append(parameter)
    return [{"params": params, "lr": lr * scale, "lr_scale": scale} for scale, params in sorted(by_scale.items())]


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
    if resume is not None:
        if not args.model_given:  # a resumed run keeps its own network's name, not the default preset's
            config.model = resume.get("training", {}).get("recipe", {}).get("model", config.model)
        return make_model(config.model, resume)
    if not args.init:
        return make_model(config.model, None)
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
