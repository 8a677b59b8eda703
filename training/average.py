"""Average the weights of several checkpoints of one network (stochastic weight averaging).

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.

    python -m training.average --out runs/bands-avg.pt runs/snap/e4.pt runs/snap/e5.pt runs/snap/e6.pt

Epochs of one fine-tune sit in one basin of the loss but bounce around its floor (a small
validation set cannot tell them apart); their mean is usually better and steadier than any
one of them. All inputs must hold the same architecture and spec. ``--pitch-strength`` sets the
comb strength of a pitch band model in the result, ``--low-gain-exponent`` how much more deeply a
band model removes what lies under 150 Hz (settings, not weights); with a setting, one checkpoint
is enough.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from rtdenoise.errors import finite_float
from rtdenoise.models.registry import CheckpointError, build_model, load_checkpoint, save_checkpoint


def average_checkpoints(paths: list[Path], settings: tuple[str, ...] = ()) -> tuple[torch.nn.Module, dict]:
    """The first checkpoint's model holding the mean of every checkpoint's weights, and its checkpoint dict
    (its ``training.epochs`` the most any input trained); the spec entries named in ``settings`` may
    differ (they are set afterwards)."""
    model, first = load_checkpoint(paths[0])
    epochs = [first.get("training", {}).get("epochs")]
    network = lambda spec: {key: value for key, value in spec.items() if key not in settings}  # noqa: E731
    total = {name: value.double() for name, value in first["state_dict"].items()}
    for path in paths[1:]:
        other_model, other = load_checkpoint(path)  # the specs compared as built (defaults filled in)
        if (other["arch"], network(other_model.spec_dict())) != (first["arch"], network(model.spec_dict())):
            raise CheckpointError(f"{path}: a different network from {paths[0]} ({other['arch']} {other['spec']})")
        for name, value in other["state_dict"].items():
            total[name] += value.double()
        epochs.append(other.get("training", {}).get("epochs"))
    model.load_state_dict({name: (value / len(paths)).to(first["state_dict"][name].dtype)
                           for name, value in total.items()})
    counted = [count for count in epochs if isinstance(count, int)]
    if counted:
        first = {**first, "training": {**first.get("training", {}), "epochs": max(counted)}}
    return model, first


def with_settings(model: torch.nn.Module, arch: str, settings: dict,
                  parser: argparse.ArgumentParser) -> torch.nn.Module:
    """``model``'s network rebuilt with the spec entries in ``settings`` changed, holding its weights."""
    spec = getattr(model, "spec", None)
    option = "--" + next(iter(settings)).replace("_", "-")
    if "pitch_strength" in settings and not getattr(spec, "pitch", False):
        parser.error("--pitch-strength: the checkpoints are not a band model with the pitch comb")
    if arch != "bands":
        parser.error(f"{option}: the checkpoints are not a band model")
    try:
        rebuilt = build_model(arch, dataclasses.asdict(dataclasses.replace(spec, **settings)))
    except ValueError:
        parser.error(f"{option}: out of range ({', '.join(f'{k} {v:g}' for k, v in settings.items())})")
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints of one network (two or more)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pitch-strength", type=finite_float, help="the comb strength of a pitch band model, 0..1")
    parser.add_argument("--low-gain-exponent", type=finite_float,
                        help="a band model's gains under 150 Hz raised to this power, 1..8 (1: as the network says)")
    parser.add_argument("--high-band-exponent", type=finite_float,
                        help="a band model's high band (8-24 kHz, at 32 kHz and up) follows its top octave's gain "
                             "raised to this power, 0..1 (default 0.8; lower keeps more of speech's high band)")
    parser.add_argument("--norm-seconds", type=finite_float,
                        help="a band model's running normalisation time constant in seconds (a start for training: "
                             "its features change with it)")
    args = parser.parse_args(argv)
    settings = {name: value for name, value in (("pitch_strength", args.pitch_strength),
                                                ("low_gain_exponent", args.low_gain_exponent),
                                                ("high_band_exponent", args.high_band_exponent),
                                                ("norm_seconds", args.norm_seconds)) if value is not None}
    if len(args.checkpoints) < (1 if settings else 2):
        parser.error("give two or more checkpoints to average (or one with a setting to change)")
    if args.out.resolve() in {path.resolve() for path in args.checkpoints}:
        parser.error(f"--out {args.out} is one of the inputs; it would be overwritten")
    model, first = average_checkpoints(args.checkpoints, tuple(settings))
    if settings:
        model = with_settings(model, first["arch"], settings, parser)
    training = dict(first.get("training", {}))
    training["averaged"] = [str(path) for path in args.checkpoints]
    save_checkpoint(model, args.out, name=args.out.stem, trained=True, training=training,
                    notes=f"mean of the weights of {len(args.checkpoints)} checkpoints")
    print(f"wrote {args.out}: the mean of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.average"))
