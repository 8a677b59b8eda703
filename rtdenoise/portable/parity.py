"""How closely an exported file follows the model it came from, hop by hop over recorded audio."""
from __future__ import annotations

import numpy as np
import torch

from rtdenoise.models import StreamingModel

from .runtime_model import OnnxModel


def stepped(model: StreamingModel, audio: np.ndarray, chunk: int) -> np.ndarray:
    """``model`` stepped ``chunk`` samples at a time over mono ``audio`` from a fresh state (whole chunks only)."""
    usable = len(audio) - len(audio) % chunk
    signal = torch.from_numpy(np.ascontiguousarray(audio[:usable], dtype=np.float32))[None]
    state = model.init_state(1, "cpu")
    outputs = []
    with torch.inference_mode():
        for start in range(0, usable, chunk):
            out, state = model.step(signal[:, start:start + chunk], state)
            outputs.append(out)
    return torch.cat(outputs, dim=1)[0].numpy()


def parity_error(model: StreamingModel, exported: OnnxModel, audio: np.ndarray) -> float:
    """The largest difference between the two outputs over the model's output peak (both from a fresh
    state, the file stepped one call at a time)."""
    reference = stepped(model, audio, exported.hop)
    candidate = stepped(exported, audio, exported.hop)
    return float(np.abs(reference - candidate).max() / max(float(np.abs(reference).max()), 1e-12))
