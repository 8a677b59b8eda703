"""Start a larger model of the same architecture from a trained smaller one (e.g. band gains -> + deep filter).

Each trained tensor is copied into the leading block of the new model's tensor of the same
name and the rest of that tensor is zeroed. For the band model this keeps the output
unchanged: the new input features (the low bins' spectrum) meet zero weights and the new
deep-filter head starts at zero, so training begins exactly where the smaller model ended.
"""
from __future__ import annotations

import torch

from rtdenoise.models import StreamingModel
from rtdenoise.models.registry import build_preset


def warm_start(preset: str, checkpoint: dict) -> StreamingModel:
    """The preset ``preset`` holding ``checkpoint``'s weights (its spec may be smaller, never larger)."""
    model = build_preset(preset)
    if model.arch != checkpoint["arch"]:
        raise SystemExit(f"--init: a {checkpoint['arch']} checkpoint cannot start a {model.arch} model")
    spec = checkpoint.get("spec", {})
    if spec.get("pitch") and (not model.spec_dict().get("pitch") or model.spec_dict().get("df_hz") != spec.get("df_hz")):
        # its pitch correlations follow the other features: another feature layout would misplace them
        raise SystemExit(f"--init: a pitch band model can only grow into a pitch preset with the same deep filter, "
                         f"not {preset!r}")
    trained = checkpoint["state_dict"]
    unknown = sorted(set(trained) - set(model.state_dict()))
    if unknown:
        raise SystemExit(f"--init: preset {preset!r} has no {unknown[0]} (the checkpoint has)")
    with torch.no_grad():
        for name, target in model.state_dict().items():
            weights = trained.get(name)
            target.zero_()  # a layer the checkpoint lacks (e.g. a new head) starts at zero
            if weights is None:
                continue
            if weights.dim() != target.dim() or any(s > t for s, t in zip(weights.shape, target.shape)):
                raise SystemExit(f"--init: {name} of the checkpoint does not fit preset {preset!r}")
            target[tuple(slice(0, s) for s in weights.shape)] = weights
    return model
