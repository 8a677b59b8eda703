"""The streaming denoiser and what runs inside it: chunking, carried state, resampling, the high band,
the voice gate, the safety guards, many streams in one batch.

May import ``rtdenoise.models``, ``rtdenoise.kernels``, ``rtdenoise.portable`` (the onnx backend) and
``rtdenoise.errors``; never files, live, bench,
the app or the CLI (they sit on top of it).
"""
from .denoiser import (BACKENDS, INPUT_LIMIT, OUTPUT_MARGIN, StreamingDenoiser, available_compute_devices, dry_gain_for,
                       load_model, pick_device)

__all__ = ["BACKENDS", "INPUT_LIMIT", "OUTPUT_MARGIN", "StreamingDenoiser", "available_compute_devices", "dry_gain_for",
           "load_model", "pick_device"]
