"""Write a checkpoint for shipping: its weights, the training history it grew from, and its scores.

Pipeline step 5 of 5 (corpus -> dataset -> train -> evaluate -> ship): ship.

    python -m training.ship runs/bands-x.pt --out models/pretrained/bands.pt --name bands \\
        --history models/pretrained/bands.pt --metrics ood=runs/ood.json:bands-x \\
        --metrics test=runs/test.json:bands-x --notes "..." --stage "stage 16: ..." --stage "stage 17: ..."

A shipped model answers ``rtdenoise info`` with every stage that made it: ``--history`` is the
checkpoint it was trained from (usually the model it replaces), whose stages, hardware and data
notes are carried over and ``--stage`` lines appended. The recipe, epochs and averaged files are
the new checkpoint's own (``--keep-recipe`` keeps the history's when only a setting changed).
``--metrics LABEL=JSON:SYSTEM`` copies one system's overall scores from a ``training.evaluate
--json`` file, with the noisy input's beside them; LABEL names the lab set (``data/lab/LABEL.pt``).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from rtdenoise.models.registry import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint

OWN_TRAINING_KEYS = ("recipe", "epochs", "averaged")
SCORES = ("pesq", "stoi", "si_sdr", "si_sdr_i", "noise_left_db", "speech_kept_db")
NOISY = "noisy input"


class ShipError(ValueError):
    """A metrics file or system that cannot be read."""


def parse_metrics_option(text: str) -> tuple[str, Path, str]:
    """``LABEL=JSON:SYSTEM`` split into its parts (the system name may itself hold colons)."""
    label, equals, rest = text.partition("=")
    path, colon, system = rest.partition(":")
    if not (equals and colon and label and path and system):
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=JSON:SYSTEM, e.g. ood=runs/ood.json:bands")
    return label, Path(path), system


def scores_entry(label: str, path: Path, system: str) -> dict[str, Any]:
    """One system's overall scores in a ``training.evaluate --json`` file, with the noisy input's."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ShipError(f"{path}: not a readable evaluation file ({error})") from None
    if not isinstance(results, dict) or system == NOISY or system not in results or NOISY not in results:
        known = ", ".join(name for name in results if name != NOISY) if isinstance(results, dict) else "none"
        raise ShipError(f"{path}: no system {system!r} beside the noisy input (systems: {known})")
    overall, noisy = results[system].get("overall", {}), results[NOISY].get("overall", {})
    missing = [key for key in SCORES if key not in overall] + [key for key in ("pesq", "stoi") if key not in noisy]
    if missing:
        raise ShipError(f"{path}: {system!r} lacks {', '.join(missing)}")
    streamed = system.endswith(" (stream)")  # training.evaluate --stream: the mixtures joined into one stream
    where = f"data/lab/{label.removesuffix('-stream')}.pt ({overall.get('clips', '?')} mixtures" \
        + (", joined into one stream)" if streamed else ")")
    return {"data": where,
            **{key: round(float(overall[key]), 4) for key in SCORES},
            "noisy.pesq": round(float(noisy["pesq"]), 4), "noisy.stoi": round(float(noisy["stoi"]), 4)}


def merged_training(own: dict[str, Any], history: dict[str, Any], stages: list[str],
                    keep_recipe: bool) -> dict[str, Any]:
    """The history's training record with the new checkpoint's recipe (unless kept) and new stages."""
    training = {key: value for key, value in copy.deepcopy(history).items()
                if keep_recipe or key not in OWN_TRAINING_KEYS}  # never the history's recipe beside new weights
    if not keep_recipe:
        training.update({key: own[key] for key in OWN_TRAINING_KEYS if key in own})
    training["stages"] = list(training.get("stages", [])) + stages
    return training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the trained (usually averaged) checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the name `rtdenoise info` shows")
    parser.add_argument("--history", type=Path, help="the checkpoint it was trained from (its stages carried)")
    parser.add_argument("--metrics", type=parse_metrics_option, action="append", default=[],
                        metavar="LABEL=JSON:SYSTEM", help="scores from training.evaluate --json (repeat)")
    parser.add_argument("--notes", default="", help="one paragraph: what the model is and how it scores")
    parser.add_argument("--stage", action="append", default=[], help="a training stage to append (repeat)")
    parser.add_argument("--keep-recipe", action="store_true",
                        help="keep the history's recipe, epochs and averaged files (only a setting changed)")
    args = parser.parse_args(argv)
    if args.out.resolve() == args.checkpoint.resolve():
        parser.error(f"--out {args.out} is the checkpoint itself; write the shipped copy elsewhere")
    try:
        model, checkpoint = load_checkpoint(args.checkpoint)
        history = read_checkpoint(args.history).get("training", {}) if args.history else {}
        metrics = {label: scores_entry(label, path, system) for label, path, system in args.metrics}
    except (CheckpointError, ShipError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    training = merged_training(checkpoint.get("training", {}), history, args.stage, args.keep_recipe)
    save_checkpoint(model, args.out, name=args.name, trained=True, training=training,
                    notes=args.notes, metrics=metrics)
    print(f"wrote {args.out}: {args.name}, {len(training['stages'])} stages, metrics {', '.join(metrics) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
