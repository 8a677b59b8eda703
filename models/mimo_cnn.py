"""MIMO CNN denoiser: a stack of causal multi-channel FIR layers with tanh.

Layer l computes ``x_l = tanh(sum_{k<K_l} S^k x_{l-1} H_{l,k})`` where ``S^k``
delays by k samples (zeros shifted in) and ``H_{l,k}`` is an ``F_{l-1} x F_l``
tap matrix; the last layer has no tanh (the course lab's specification). Implemented as
``conv1d`` over a kept history of ``K_l - 1`` input frames per layer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import State, StreamingModel


@dataclass
class MimoCNNSpec:
    """Layers L = len(taps); ``features`` has L + 1 entries, first and last 1 for audio."""

    taps: list[int] = field(default_factory=lambda: [40, 40])
    features: list[int] = field(default_factory=lambda: [1, 5, 1])
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if len(self.features) != len(self.taps) + 1:
            raise ValueError(f"features {self.features} must have len(taps)+1 = {len(self.taps) + 1} entries")
        if self.features[0] != 1 or self.features[-1] != 1:
            raise ValueError("an audio MIMO CNN takes and returns one feature (features[0] == features[-1] == 1)")
        if any(k < 1 for k in self.taps) or any(f < 1 for f in self.features):
            raise ValueError("taps and features must be positive")


LAB_PRESET = MimoCNNSpec(taps=[40, 40], features=[1, 5, 1])
LARGE_PRESET = MimoCNNSpec(taps=[64, 32, 32, 16], features=[1, 16, 16, 16, 1])


class MimoCNN(StreamingModel):
    """Causal MIMO FIR stack; hop 1, no latency, state = per-layer input history."""

    arch = "mimo_cnn"

    def __init__(self, spec: MimoCNNSpec = LAB_PRESET) -> None:
        super().__init__()
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.hop = 1
        self.latency_samples = 0
        # taps[l][k] is H_{l,k}: (F_{l-1}, F_l), exactly the seed's parametrisation.
        self.taps = nn.ParameterList(
            nn.Parameter(torch.empty(k, f_in, f_out))
            for k, f_in, f_out in zip(spec.taps, spec.features[:-1], spec.features[1:])
        )
        for h in self.taps:
            k, f_in, _ = h.shape
            bound = math.sqrt(3.0 / (k * f_in))  # unit output variance for unit input
            nn.init.uniform_(h, -bound, bound)

    def spec_dict(self) -> dict:
        return asdict(self.spec)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        device = device if device is not None else self._device()
        return tuple(
            torch.zeros(batch, h.shape[1], h.shape[0] - 1, device=device, dtype=h.dtype) for h in self.taps
        )

    def state_names(self) -> tuple[str, ...]:
        return tuple(f"layer{index + 1}_history" for index in range(len(self.taps)))

    def _conv_weights(self) -> list[Tensor]:
        # conv1d correlates: out[n] = sum_j w[j] in[n + j]; with K-1 history frames in
        # front, in[n + j] = x[n - (K-1-j)], so w[..., j] = H_{K-1-j}.
        if torch.is_grad_enabled() and any(h.requires_grad for h in self.taps):
            return [h.flip(0).permute(2, 1, 0) for h in self.taps]
        # Inference: reuse the rearranged taps until a parameter changes (its version bumps).
        key = tuple((h._version, h.data_ptr(), h.device) for h in self.taps)
        if getattr(self, "_cached_key", None) != key:
            self._cached_weights = [h.detach().flip(0).permute(2, 1, 0).contiguous() for h in self.taps]
            self._cached_key = key
        return self._cached_weights

    def step(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        x = chunk[:, None, :]  # (B, 1, T)
        new_state = []
        weights = self._conv_weights()
        last = len(weights) - 1
        for index in range(len(weights)):
            history = state[index]
            padded = torch.cat((history, x), dim=-1)
            new_state.append(padded[..., padded.shape[-1] - history.shape[-1]:])
            x = F.conv1d(padded, weights[index])
            if index != last:
                x = torch.tanh(x)
        return x[:, 0, :], tuple(new_state)
