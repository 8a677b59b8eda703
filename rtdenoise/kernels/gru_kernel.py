"""The STFT GRU on the CPU in numpy: one hop live, a whole block offline.

A 10 ms hop of the default GRU is about 40 small operators; PyTorch spends
more time dispatching them than computing them, and ``torch.gru`` re-checks
its weights on every call. Here the weights are copied once into contiguous
float32 arrays, the FFTs are scipy's single-precision ones, the GRU's input
projections for all frames of a chunk are one matrix product, and only the
recurrent product runs frame by frame. Same maths as :meth:`GRUDenoiser.step`
(tested equal within float32 rounding), so streaming and offline still agree.
"""
from __future__ import annotations


import numpy as np
import torch
from scipy.special import expit

from rtdenoise.models import GRUDenoiser, State
from rtdenoise.models.gru import LOG_POWER_EPS

from .stft_step import HalfOverlapSTFTStep


class NumpyGRUStep(HalfOverlapSTFTStep):
    """``GRUDenoiser.step`` for STFT models with 50 % overlap, on chunks of any whole number of hops."""

    @staticmethod
    def suits(model: GRUDenoiser, samples: int) -> bool:
        """True for an STFT GRU with half-overlapping frames and a chunk of whole hops."""
        spec = model.spec
        return spec.frontend == "stft" and spec.frame == 2 * spec.hop and samples % spec.hop == 0

    def __init__(self, model: GRUDenoiser, state: State, channels: int, samples: int) -> None:
        spec = model.spec
        hidden = spec.hidden
        weights = {name: value.detach().cpu().numpy().astype(np.float32) for name, value in model.state_dict().items()}

        def transposed(name: str) -> np.ndarray:
            return np.ascontiguousarray(weights[name].T)

        self.shape = (channels, samples)
        self._hop = spec.hop
        self._window = model.window.cpu().numpy().astype(np.float32)
        self._norm = (weights["norm.weight"], weights["norm.bias"], np.float32(model.norm.eps))
        self._encode = (transposed("encode.weight"), weights["encode.bias"])
        self._decode = (transposed("decode.weight"), weights["decode.bias"])
        self._floor = np.float32(spec.gain_floor)
        self._layers = [gru_layer_weights(weights, layer, hidden) for layer in range(spec.layers)]
        self._history = np.zeros((channels, spec.hop), np.float32)
        self._tail = np.zeros((channels, spec.hop), np.float32)
        self._hidden = np.zeros((spec.layers, channels, hidden), np.float32)
        # The carried state in the model's layout: tensors sharing the arrays' memory.
        self.state: State = tuple(torch.from_numpy(a) for a in (self._history, self._tail, self._hidden))
        self.load_state(state)

    def _enhance(self, spectrum: np.ndarray) -> np.ndarray:
        return spectrum * self._gains(spectrum)

    def _gains(self, spectrum: np.ndarray) -> np.ndarray:
        """Per-bin gains for a ``(C, k, bins)`` spectrum; the hidden state advances."""
        channels, count, bins = spectrum.shape
        power = spectrum.real ** 2
        power += spectrum.imag ** 2
        features = np.log(power.reshape(-1, bins) + np.float32(LOG_POWER_EPS))
        weight, bias, eps = self._norm
        features -= features.sum(-1, keepdims=True) / np.float32(bins)
        deviation = np.sqrt(np.square(features).sum(-1, keepdims=True) / np.float32(bins) + eps)
        features /= deviation
        features *= weight
        features += bias
        encode, encode_bias = self._encode
        x = features @ encode
        x += encode_bias
        np.maximum(x, 0, out=x)
        for layer, weights in enumerate(self._layers):
            x = run_gru_layer(x.reshape(channels, count, -1), self._hidden[layer], weights)
        decode, decode_bias = self._decode
        gains = x.reshape(channels * count, -1) @ decode
        gains += decode_bias
        expit(gains, out=gains)
        np.maximum(gains, self._floor, out=gains)
        return gains.reshape(channels, count, bins)


def gru_layer_weights(weights: dict, layer: int, hidden: int) -> tuple:
    """One ``nn.GRU`` layer's weights as :func:`run_gru_layer` takes them (transposed, biases folded)."""
    input_bias = weights[f"gru.bias_ih_l{layer}"].copy()
    recurrent_bias = weights[f"gru.bias_hh_l{layer}"]
    input_bias[: 2 * hidden] += recurrent_bias[: 2 * hidden]  # r and z add both biases; n keeps its own
    recurrent = np.zeros((hidden + 1, 3 * hidden), np.float32)  # [W_hh^T ; (0, 0, b_hn)]
    recurrent[:hidden] = weights[f"gru.weight_hh_l{layer}"].T
    recurrent[hidden, 2 * hidden:] = recurrent_bias[2 * hidden:]
    return np.ascontiguousarray(weights[f"gru.weight_ih_l{layer}"].T), input_bias, recurrent


def run_gru_layer(x: np.ndarray, hidden: np.ndarray, weights: tuple) -> np.ndarray:
    """One GRU layer over ``x`` ``(C, k, in)``; ``hidden`` ``(C, H)`` advances in place. Returns ``(C, k, H)``."""
    input_weight, input_bias, recurrent_weight = weights
    size = hidden.shape[-1]
    projected = x @ input_weight  # every frame's input projection at once: (C, k, 3H)
    projected += input_bias
    outputs = np.empty(x.shape[:2] + (size,), np.float32)
    augmented = np.ones(size + 1, np.float32)  # [h | 1]: the n gate's recurrent bias rides in the product
    h = augmented[:size]
    recurrent = np.empty(3 * size, np.float32)
    recurrent_gates, new = recurrent[: 2 * size], recurrent[2 * size:]
    gates = np.empty(2 * size, np.float32)
    reset, update = gates[:size], gates[size:]
    for channel, given_frames in enumerate(projected):
        h[:] = hidden[channel]
        for given_gates, given_new, out in zip(given_frames[:, : 2 * size], given_frames[:, 2 * size:],
                                               outputs[channel]):
            np.matmul(augmented, recurrent_weight, out=recurrent)
            np.add(given_gates, recurrent_gates, out=gates)
            expit(gates, out=gates)  # reset r | update z
            new *= reset
            new += given_new
            np.tanh(new, out=new)
            h -= new  # h' = n + z * (h - n)
            h *= update
            h += new
            out[:] = h
        hidden[channel] = h
    return outputs
