"""The STFT GRU's one-frame step on the CPU, with its buffers and weights held ready.

The live path runs one 10 ms hop per call. :meth:`GRUDenoiser.step` then spends
as much time on Python around the kernels (module attribute lookups, ``cat``
of history and chunk, tensor wrapping in the engine) as on the STFT. Here the
history and the new chunk share one buffer (no ``cat``), every weight is
looked up once, elementwise work runs in place, and the carried state tensors
are the buffers themselves. Same operations in the same order as
``GRUDenoiser._step_one_frame``: the output is the same to float rounding.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rtdenoise.models import GRUDenoiser, State

from .fixed_step import FixedShapeStep

_LOG_EPS = 1e-8


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
        self._hop = hop
        self._frame = model.frame
        self._window = model.window.detach().clone()
        self._norm = (model.norm.normalized_shape, model.norm.weight.detach(), model.norm.bias.detach(),
                      model.norm.eps)
        self._encode = (model.encode.weight.detach(), model.encode.bias.detach())
        self._decode = (model.decode.weight.detach(), model.decode.bias.detach())
        gru = model.gru
        self._gru_args = ([w.detach() for w in gru._flat_weights], gru.bias, gru.num_layers)
        self._floor = model.spec.gain_floor
        self._signal = torch.zeros(channels, 2 * hop)  # [history | new chunk]
        self._signal_np = self._signal.numpy()
        tail = torch.zeros(channels, hop)
        hidden = torch.zeros(gru.num_layers, channels, gru.hidden_size)
        self.state: State = (self._signal[:, :hop], tail, hidden)
        self.load_state(state)


    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance one ``(channels, hop)`` float32 chunk; history, tail and hidden state advance in place."""
        hop, signal = self._hop, self._signal
        self._signal_np[:, hop:] = chunk
        spectrum = torch.fft.rfft((signal * self._window).unsqueeze(1))
        power = torch.view_as_real(spectrum).square().sum(-1)
        features = F.layer_norm(torch.log(power + _LOG_EPS), *self._norm)
        features = torch.relu(F.linear(features, *self._encode))
        weights, bias, layers = self._gru_args
        features, hidden = torch.gru(features, self.state[2], weights, bias, layers, 0.0, False, False, True)
        gains = torch.sigmoid(F.linear(features, *self._decode))
        if self._floor:
            gains = gains.clamp_min(self._floor)
        enhanced = (torch.fft.irfft(spectrum * gains, n=self._frame) * self._window).squeeze(1)
        history, tail, state_hidden = self.state
        out = enhanced[:, :hop] + tail
        tail.copy_(enhanced[:, hop:])
        state_hidden.copy_(hidden)
        history.copy_(signal[:, hop:])
        return out.numpy()
