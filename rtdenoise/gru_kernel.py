"""The STFT GRU's one-hop step on the CPU, with the history kept in place.

The live path runs one 10 ms hop per call. Here the history and the new chunk
share one buffer (no ``cat``), the chunk goes in without the engine's tensor
wrapping, the model's weights are gathered once (:class:`FrameParams`), and the
carried state tensors are the kernel's own buffers. The maths is the model's
own one-frame step (:func:`stft_one_frame`), so the output is ``model.step``'s.
"""
from __future__ import annotations

import numpy as np
import torch

from rtdenoise.models import GRUDenoiser, State
from rtdenoise.models.gru import stft_one_frame

from .fixed_step import FixedShapeStep


class GRUFrameStep(FixedShapeStep):
    """``GRUDenoiser.step`` on ``(channels, hop)`` chunks for STFT models with 50 % overlap."""

    @staticmethod
    def suits(model: GRUDenoiser, samples: int) -> bool:
        """True for an STFT GRU whose chunk is exactly one hop of a half-overlapping frame."""
        spec = model.spec
        return spec.frontend == "stft" and spec.frame == 2 * spec.hop and samples == spec.hop

    def __init__(self, model: GRUDenoiser, state: State, channels: int, samples: int) -> None:
        hop = model.hop
        self.shape = (channels, samples)
        with torch.no_grad():  # inference: the GRU kernel without nn.GRU's wrapper
            self._params = model.frame_params()
        self._hop = hop
        self._signal = torch.zeros(channels, 2 * hop)  # [history | new chunk]
        self._signal_np = self._signal.numpy()
        self.state: State = (self._signal[:, :hop], torch.zeros(channels, hop),
                             torch.zeros(model.spec.layers, channels, model.spec.hidden))
        self.load_state(state)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance one ``(channels, hop)`` float32 chunk; history, tail and hidden state advance in place."""
        hop, signal = self._hop, self._signal
        history, tail, hidden = self.state
        self._signal_np[:, hop:] = chunk
        out, (_, new_tail, new_hidden) = stft_one_frame(signal, tail, hidden, self._params)
        tail.copy_(new_tail)
        hidden.copy_(new_hidden)
        history.copy_(signal[:, hop:])
        return out.numpy()
