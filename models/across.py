"""Attention across the bands of one frame: the band model's modelling across frequency.

The GRU carries time; this block lets each band look at every other band of the same frame
(harmonics, the spread of a noise, where speech energy sits), as FastEnhancer's frequency
attention and GTCRN's intra-frame path do. Each band is a token: its share of the GRU's output
(a linear map to ``bands x channels``), its own features (level, shape, pitch correlation, level
above the noise floor) and a learned position. One pre-norm transformer layer (multi-head
self-attention, then a two-layer MLP) refines the tokens. No state: it works frame by frame.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class BandAttention(nn.Module):
    """``(B, k, hidden)`` GRU output and ``(B, k, bands, inputs)`` band features -> ``(B, k, bands, channels)``."""

    def __init__(self, hidden: int, bands: int, inputs: int, channels: int, heads: int) -> None:
        super().__init__()
        self.bands, self.channels, self.heads = bands, channels, heads
        self.from_hidden = nn.Linear(hidden, bands * channels)
        self.from_features = nn.Linear(inputs, channels)
        self.position = nn.Parameter(0.1 * torch.randn(bands, channels))
        self.attention_norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.mix = nn.Linear(channels, channels)
        self.mlp_norm = nn.LayerNorm(channels)
        self.expand = nn.Linear(channels, 2 * channels)
        self.contract = nn.Linear(2 * channels, channels)

    def forward(self, x: Tensor, features: Tensor) -> Tensor:
        batch, count, _ = x.shape
        tokens = self.from_hidden(x).reshape(batch, count, self.bands, self.channels)
        tokens = tokens + self.from_features(features) + self.position
        query, key, value = self.qkv(self.attention_norm(tokens)).chunk(3, dim=-1)
        width = self.channels // self.heads
        split = lambda t: t.reshape(batch, count, self.bands, self.heads, width).transpose(2, 3)  # noqa: E731
        scores = split(query) @ split(key).transpose(-1, -2) / math.sqrt(width)       # (B, k, heads, bands, bands)
        attended = (torch.softmax(scores, dim=-1) @ split(value)).transpose(2, 3)
        tokens = tokens + self.mix(attended.reshape(batch, count, self.bands, self.channels))
        return tokens + self.contract(torch.relu(self.expand(self.mlp_norm(tokens))))
