"""Build models from specs and save/load self-describing checkpoints safely.

A checkpoint is a plain dict (no pickled classes), so it loads with
``torch.load(..., weights_only=True)``: an untrusted file cannot run code.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from rtdenoise.errors import first_line

from .bands import BandDenoiser, BandSpec
from .base import StreamingModel
from .gru import GRUDenoiser, GRUSpec
from .mimo_cnn import LARGE_PRESET, LAB_PRESET, MimoCNN, MimoCNNSpec

CHECKPOINT_FORMAT = "rtdenoise-checkpoint"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_FILE = PRETRAINED_DIR / "DEFAULT"

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "cnn": ("mimo_cnn", vars(LAB_PRESET).copy()),
    "cnn-lab": ("mimo_cnn", vars(LAB_PRESET).copy()),
    "cnn-large": ("mimo_cnn", vars(LARGE_PRESET).copy()),
    "gru": ("gru", vars(GRUSpec(gain_floor=0.1)).copy()),
    "gru-small": ("gru", vars(GRUSpec(hidden=128, layers=2)).copy()),
    "gru-wave": ("gru", vars(GRUSpec(frontend="wave", hop=160, hidden=256, layers=2)).copy()),
    "gru-seed": ("gru", vars(GRUSpec(frontend="wave", hop=1, hidden=30, layers=1)).copy()),
    "bands": ("bands", vars(BandSpec()).copy()),
    "bands-small": ("bands", vars(BandSpec(hidden=64, bands=24)).copy()),
    "bands-48k": ("bands", vars(BandSpec(sample_rate=48000, bands=40)).copy()),
    "bands-gains": ("bands", vars(BandSpec(df_hz=0.0)).copy()),
    "bands-pitch": ("bands", vars(BandSpec(df_hz=0.0, pitch=True)).copy()),
    "bands-comb": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, learned_comb=True)).copy()),
    "bands-ahead": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, lookahead=1)).copy()),
    "bands-floor": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, noise_floor=True)).copy()),
    "bands-wide": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=160)).copy()),
    "bands-wider": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=192)).copy()),
    # the default's network plus each band's level above its tracked noise floor (a cue that survives a stream)
    "bands-wider-floor": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=192,
                                                 noise_floor=True)).copy()),
    # the default's network plus its own gains for the bins under 2 kHz (finer than the ERB bands there)
    "bands-fine": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=192,
                                          noise_floor=True, fine_hz=2000.0)).copy()),
    # the default's network plus attention across its bands in every frame (modelling across frequency)
    "bands-across": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=192,
                                            noise_floor=True, across_channels=16)).copy()),
    # bands-across with 2x256 GRU units (grown from the default: its new units start silent)
    "bands-across-wide": ("bands", vars(BandSpec(df_hz=0.0, pitch=True, pitch_strength=0.3, hidden=256,
                                                 noise_floor=True, across_channels=16)).copy()),
    # bands-across plus a deep filter (3 taps) on the bins under 3.2 kHz, between the harmonics the bands can't split
    "bands-across-df": ("bands", vars(BandSpec(pitch=True, pitch_strength=0.3, hidden=192, noise_floor=True,
                                               across_channels=16)).copy()),
}


class CheckpointError(ValueError):
    """A model file that is missing, unsafe, corrupt or of an unknown kind."""


def build_model(arch: str, spec: dict[str, Any]) -> StreamingModel:
    """Rebuild a model from its architecture name and plain-dict spec."""
    try:
        if arch == "mimo_cnn":
            return MimoCNN(MimoCNNSpec(**spec))
        if arch == "gru":
            return GRUDenoiser(GRUSpec(**spec))
        if arch == "bands":
            return BandDenoiser(BandSpec(**spec))
    except TypeError as error:
        raise CheckpointError(f"spec does not fit architecture {arch!r}: {error}") from None
    raise CheckpointError(f"unknown architecture {arch!r} (known: mimo_cnn, gru, bands)")


def build_preset(name: str) -> StreamingModel:
    """A freshly initialised model from a preset name such as ``cnn-lab`` or ``gru``."""
    if name not in PRESETS:
        raise CheckpointError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    arch, spec = PRESETS[name]
    return build_model(arch, dict(spec))


def save_checkpoint(model: StreamingModel, path: str | Path, **info: Any) -> Path:
    """Write ``model`` with its spec and ``info`` (training, metrics, notes) atomically."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "arch": model.arch,
        "spec": model.spec_dict(),
        "sample_rate": model.sample_rate,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **info,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def load_weights_only(path: str | Path) -> Any:
    """``torch.load`` that refuses code-running pickles, without torch's warnings about foreign pickles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrusted file's protocol warning would break the one-line error
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict without executing code; raise CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    with path.open("rb") as file:
        magic = file.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):  # torch.save writes a zip (or a pickle)
        raise CheckpointError(f"{path}: not a model checkpoint (not a file torch.save wrote); give a shipped "
                              "name (rtdenoise models) or a .pt from training")
    try:
        payload = load_weights_only(path)
    except Exception as error:  # unpickling errors come in many types
        reason = first_line(error)
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            reason = "it contains Python objects that could run code; refused"
        raise CheckpointError(f"{path}: not a loadable rtdenoise model ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rtdenoise checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    return payload


def load_checkpoint(path: str | Path) -> tuple[StreamingModel, dict[str, Any]]:
    """Rebuild the model stored at ``path``; returns ``(model in eval mode, checkpoint dict)``."""
    payload = read_checkpoint(path)
    model = build_model(payload.get("arch", "?"), dict(payload.get("spec", {})))
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "missing weights"
        raise CheckpointError(f"{path}: weights do not match its spec ({first})") from None
    damaged = [name for name, value in payload["state_dict"].items()
               if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()]
    if damaged:
        raise CheckpointError(f"{path}: damaged weights (NaN or infinite values in {damaged[0]}); refused")
    if int(payload.get("sample_rate", model.sample_rate)) != model.sample_rate:
        raise CheckpointError(f"{path}: sample rate {payload['sample_rate']} disagrees with its spec")
    return model.eval(), payload


def list_pretrained() -> list[str]:
    """Names of the shipped checkpoints in ``models/pretrained``."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def default_model_name() -> str:
    """The shipped model used when none is asked for (named in ``pretrained/DEFAULT``)."""
    if DEFAULT_FILE.is_file():
        return DEFAULT_FILE.read_text().strip()
    names = list_pretrained()
    if not names:
        raise CheckpointError(f"no shipped models found in {PRETRAINED_DIR}")
    return names[0]


def resolve_model_path(name_or_path: str | None) -> Path:
    """A shipped model name, or a path to a checkpoint file, to a file path."""
    if name_or_path is None:
        name_or_path = default_model_name()
    candidate = PRETRAINED_DIR / f"{name_or_path}.pt"
    if candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.suffix or path.exists() or "/" in name_or_path:
        return path
    raise CheckpointError(
        f"{name_or_path}: no such shipped model (shipped: {', '.join(list_pretrained()) or 'none'}) or file"
    )
