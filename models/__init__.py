"""Denoising networks and their weights (installed as ``rtdenoise.models``).

Every model follows the streaming contract in :mod:`.base`; :mod:`.registry`
builds them from a spec and loads checkpoints safely.
"""
from .base import State, StreamingModel
from .gru import GRUDenoiser, GRUSpec
from .mimo_cnn import LAB_PRESET, MimoCNN, MimoCNNSpec
from .registry import (
    CheckpointError,
    build_model,
    default_model_name,
    list_pretrained,
    load_checkpoint,
    resolve_model_path,
    save_checkpoint,
)

__all__ = [
    "State", "StreamingModel", "GRUDenoiser", "GRUSpec", "MimoCNN", "MimoCNNSpec", "LAB_PRESET",
    "CheckpointError", "build_model", "default_model_name", "list_pretrained",
    "load_checkpoint", "resolve_model_path", "save_checkpoint",
]
