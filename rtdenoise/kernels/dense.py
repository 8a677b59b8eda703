"""A trained ``nn.Linear``'s weights laid out for the numpy kernels' ``x @ weight + bias``."""
from __future__ import annotations

import numpy as np


def linear_layer(weights: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(weight transposed, contiguous; bias)`` of the layer ``name`` in a state dict of numpy arrays."""
    return np.ascontiguousarray(weights[f"{name}.weight"].T), weights[f"{name}.bias"]
