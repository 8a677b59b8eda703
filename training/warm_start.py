"""Start a larger model of the same architecture from a trained smaller one (e.g. band gains -> + deep filter).

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.

Each trained tensor is copied into the leading block of the new model's tensor of the same
name (for a GRU's stacked gate tensors, into each gate's leading block). Weights from new
inputs to trained units are zeroed, and new heads start at zero. For the band model this keeps
the output unchanged: the new input features (the low bins' spectrum, the pitch correlations)
meet zero weights and the new deep-filter head starts at zero, so training begins exactly where
the smaller model ended. A wider network (more hidden units) keeps the new units' own weights
at their fresh random start (units that all started at zero would stay alike); only their
weights into trained units and heads are zero, so the output is still unchanged at the start.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from rtdenoise.models import StreamingModel
from rtdenoise.models.registry import build_model, build_preset, read_checkpoint, save_checkpoint


def warm_start(preset: str, checkpoint: dict) -> StreamingModel:
    """The preset ``preset`` holding ``checkpoint``'s weights (its spec may be smaller, never larger)."""
    model = build_preset(preset)
    if model.arch != checkpoint["arch"]:
        raise SystemExit(f"--init: a {checkpoint['arch']} checkpoint cannot start a {model.arch} model")
    spec = checkpoint.get("spec", {})
    trained = dict(checkpoint["state_dict"])
    if hasattr(model, "feature_blocks") and "encode.weight" in trained:
        # new input features may sit between trained ones (a deep filter's low bins before the pitch
        # correlations): each trained feature's column goes where that feature now is, the new ones stay zero
        trained["encode.weight"] = _features_moved(trained["encode.weight"], build_model(model.arch, spec),
                                                   model, preset)
    unknown = sorted(set(trained) - set(model.state_dict()))
    if unknown:
        raise SystemExit(f"--init: preset {preset!r} has no {unknown[0]} (the checkpoint has)")
    hidden = spec.get("hidden"), model.spec_dict().get("hidden")
    with torch.no_grad():
        for name, target in model.state_dict().items():
            weights = trained.get(name)
            if weights is None:
                if not name.startswith(model.keeps_initial):
                    target.zero_()  # a layer the checkpoint lacks (e.g. a new head) starts at zero
                continue  # (a new path's inner layers keep their random start: its output layer is zero)
            if weights.dim() != target.dim() or any(s > t for s, t in zip(weights.shape, target.shape)):
                raise SystemExit(f"--init: {name} of the checkpoint does not fit preset {preset!r}")
            gates = 3 if name.startswith("gru.") else 1  # nn.GRU stacks its r, z, n gates along the rows
            if gates > 1 and weights.shape[0] % gates:
                raise SystemExit(f"--init: {name} of the checkpoint is not a GRU's three gates")
            _grow_into(target.view(gates, target.shape[0] // gates, *target.shape[1:]),
                       weights.view(gates, weights.shape[0] // gates, *weights.shape[1:]),
                       new_units=bool(hidden[0] and hidden[1] and hidden[1] > hidden[0]))
    return model


def _features_moved(weight: torch.Tensor, old: StreamingModel, new: StreamingModel, preset: str) -> torch.Tensor:
    """``weight`` (rows, old features) with its columns at the new layout's places of the same features."""
    new_at, at = {}, 0
    for name, width in new.feature_blocks():
        new_at[name] = (at, width)
        at += width
    moved = weight.new_zeros(weight.shape[0], at)
    at = 0
    for name, width in old.feature_blocks():
        if new_at.get(name, (0, -1))[1] != width:
            raise SystemExit(f"--init: the checkpoint's input layer does not fit preset {preset!r} "
                             f"(it has no {name} features {width} wide)")
        moved[:, new_at[name][0]: new_at[name][0] + width] = weight[:, at: at + width]
        at += width
    return moved


def _grow_into(target: torch.Tensor, weights: torch.Tensor, new_units: bool) -> None:
    """``weights`` ``(gates, rows, ...)`` into the leading block of each gate of ``target``; the trained rows'
    new columns become zero; the new rows keep their fresh values when ``new_units``, else they become zero."""
    rows = weights.shape[1]
    if not new_units:
        target[:, rows:] = 0
    trained_rows = target[:, :rows]
    trained_rows.zero_()
    trained_rows[(slice(None), slice(None), *(slice(0, s) for s in weights.shape[2:]))] = weights


def main(argv: list[str] | None = None) -> int:
    """Write the grown network as a checkpoint, so that several runs can start from the very same weights."""
    parser = argparse.ArgumentParser(prog="python -m training.warm_start", description=main.__doc__)
    parser.add_argument("--model", required=True, help="the larger preset, e.g. bands-wide")
    parser.add_argument("--init", type=Path, required=True, help="the trained checkpoint it grows from")
    parser.add_argument("--seed", type=int, default=0, help="seeds the new units' random start (default 0)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.out.exists() and args.out.resolve() == args.init.resolve():
        raise SystemExit("--out must not overwrite --init")
    torch.manual_seed(args.seed)
    start = read_checkpoint(args.init)
    model = warm_start(args.model, start)
    path = save_checkpoint(model, args.out, name=args.model, notes=f"{args.init.name} grown into {args.model}",
                           training={"recipe": {"model": args.model}, "grown_from": str(args.init), "seed": args.seed})
    print(f"wrote {path}: {args.model} starting from {args.init}")
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.warm_start"))
