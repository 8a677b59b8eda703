"""The band model's attention across bands (``models/across.py``) in numpy, for the band kernel."""
from __future__ import annotations

import numpy as np

from .dense import linear_layer

LAYER_NORM_EPS = np.float32(1e-5)  # nn.LayerNorm's default


def _layer_norm(tokens: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    centred = tokens - tokens.mean(-1, keepdims=True)
    spread = np.sqrt(np.square(centred).mean(-1, keepdims=True) + LAYER_NORM_EPS)
    return centred / spread * scale + shift


class BandAttentionShift:
    """``BandAttention`` followed by ``across_head``: each band's shift of its gain's logit."""

    def __init__(self, weights: dict[str, np.ndarray], bands: int, heads: int) -> None:
        self._bands, self._heads = bands, heads
        self._from_hidden = linear_layer(weights, "across.from_hidden")
        self._from_features = linear_layer(weights, "across.from_features")
        self._position = weights["across.position"]
        self._channels = self._position.shape[1]
        self._attention_norm = weights["across.attention_norm.weight"], weights["across.attention_norm.bias"]
        self._qkv = linear_layer(weights, "across.qkv")
        self._mix = linear_layer(weights, "across.mix")
        self._mlp_norm = weights["across.mlp_norm.weight"], weights["across.mlp_norm.bias"]
        self._expand = linear_layer(weights, "across.expand")
        self._contract = linear_layer(weights, "across.contract")
        self._head = linear_layer(weights, "across_head")

    def __call__(self, x: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``(C, k, bands)``: the shifts, from the GRU's output ``x`` ``(C, k, hidden)`` and the band features
        ``(C, k, bands, inputs)``."""
        channels, count, _ = x.shape
        weight, bias = self._from_hidden
        tokens = (x @ weight + bias).reshape(channels, count, self._bands, self._channels)
        weight, bias = self._from_features
        tokens += features @ weight + bias
        tokens += self._position
        weight, bias = self._qkv
        qkv = _layer_norm(tokens, *self._attention_norm) @ weight + bias
        width = self._channels // self._heads
        query, key, value = (part.reshape(channels, count, self._bands, self._heads, width).transpose(0, 1, 3, 2, 4)
                             for part in np.split(qkv, 3, axis=-1))
        scores = query @ key.transpose(0, 1, 2, 4, 3)
        scores *= np.float32(1 / np.sqrt(width))
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        attended = (scores @ value).transpose(0, 1, 3, 2, 4).reshape(channels, count, self._bands, self._channels)
        weight, bias = self._mix
        tokens += attended @ weight + bias
        weight, bias = self._expand
        inner = _layer_norm(tokens, *self._mlp_norm) @ weight + bias
        np.maximum(inner, 0, out=inner)
        weight, bias = self._contract
        tokens += inner @ weight + bias
        weight, bias = self._head
        return (tokens @ weight + bias)[..., 0]
