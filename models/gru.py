"""GRU denoiser: a recurrent, causal denoiser that carries its hidden state.

Two front-ends:

* ``"stft"`` (default): sqrt-Hann STFT frames (``frame`` samples, ``hop`` apart),
  log-power features -> GRU -> a per-bin gain in [0, 1] applied to the noisy
  spectrum -> inverse STFT with overlap-add. Latency ``frame - hop`` samples.
  The gain starts at 0.95, so a fresh model is a near pass-through.
* ``"wave"``: non-overlapping waveform frames of ``hop`` samples in, a residual
  correction ``tanh(linear(h))`` out; starts as the exact identity. With
  ``hop=1, hidden=30, layers=1`` it is the seed's per-sample GRU (the RNN denoising blog's model).

State = (input history, overlap-add tail, GRU hidden ``(layers, B, hidden)``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import State, StreamingModel
from .dft import FrameDFT

LOG_POWER_EPS = 1e-8  # log(power + eps): features of silent bins stay finite


@dataclass
class GRUSpec:
    frontend: str = "stft"  # "stft" | "wave"
    frame: int = 320        # STFT window (stft) — ignored by "wave"
    hop: int = 160
    hidden: int = 256
    layers: int = 2
    sample_rate: int = 16000
    gain_init: float = 3.0  # stft: initial gain logit, sigmoid(3) = 0.95 (-0.4 dB), not saturated
    gain_floor: float = 0.0  # stft: no bin is attenuated below this (0.1 = -20 dB): fewer musical artefacts

    def __post_init__(self) -> None:
        if self.frontend not in ("stft", "wave"):
            raise ValueError(f"unknown GRU frontend {self.frontend!r} (use 'stft' or 'wave')")
        if self.frontend == "wave":
            self.frame = self.hop
        if self.hop < 1 or self.frame < self.hop or self.hidden < 1 or self.layers < 1 or not 0 <= self.gain_floor < 1:
            raise ValueError(f"invalid GRU spec {self}")


class GRUDenoiser(StreamingModel):
    """Causal GRU denoiser; see the module docstring for the two front-ends."""

    arch = "gru"

    def __init__(self, spec: GRUSpec | None = None) -> None:
        super().__init__()
        self.spec = spec = spec or GRUSpec()
        self.sample_rate = spec.sample_rate
        self.hop = spec.hop
        self.frame = spec.frame
        self.latency_samples = spec.frame - spec.hop
        self.dft: FrameDFT | None = None  # use_matrix_dft: FFTs as matrix products (the ONNX export)
        if spec.frontend == "stft":
            bins = spec.frame // 2 + 1
            self.register_buffer("window", torch.hann_window(spec.frame, periodic=True).sqrt(), persistent=False)
            self.norm = nn.LayerNorm(bins)
            self.encode = nn.Linear(bins, spec.hidden)
            self.gru = nn.GRU(spec.hidden, spec.hidden, spec.layers, batch_first=True)
            self.decode = nn.Linear(spec.hidden, bins)
            nn.init.normal_(self.decode.weight, std=0.01)
            nn.init.constant_(self.decode.bias, spec.gain_init)
        else:
            self.gru = nn.GRU(spec.hop, spec.hidden, spec.layers, batch_first=True)
            self.decode = nn.Linear(spec.hidden, spec.hop)
            nn.init.zeros_(self.decode.weight)
            nn.init.zeros_(self.decode.bias)

    def spec_dict(self) -> dict:
        return asdict(self.spec)

    def use_matrix_dft(self) -> None:
        if self.spec.frontend == "stft":
            self.dft = FrameDFT(self.frame).to(self.window.device)

    def _rfft(self, frames: Tensor) -> Tensor:
        return torch.fft.rfft(frames) if self.dft is None else self.dft.rfft(frames)

    def _irfft(self, spectrum: Tensor) -> Tensor:
        return torch.fft.irfft(spectrum, n=self.frame) if self.dft is None else self.dft.irfft(spectrum)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        device = device if device is not None else self._device()
        overlap = self.frame - self.hop
        hidden = torch.zeros(self.spec.layers, batch, self.spec.hidden, device=device)
        return (
            torch.zeros(batch, overlap, device=device),
            torch.zeros(batch, overlap, device=device),
            hidden,
        )

    def state_names(self) -> tuple[str, ...]:
        return ("input_history", "overlap_tail", "gru_hidden")

    def memory_only(self, state: State) -> State:
        history, tail, hidden = state
        return torch.zeros_like(history), torch.zeros_like(tail), hidden

    def with_memory_of(self, state: State, earlier: State) -> State:
        return state[0], state[1], earlier[2]

    def step(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        if self.spec.frontend == "wave":
            return self._step_wave(chunk, state)
        return self._step_stft(chunk, state)

    def _step_wave(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        history, tail, hidden = state
        frames = chunk.reshape(chunk.shape[0], -1, self.hop)  # (B, k, hop)
        features, hidden = self._gru(frames, hidden)
        out = frames + torch.tanh(F.linear(features, self.decode.weight, self.decode.bias))
        return out.reshape(chunk.shape), (history, tail, hidden)

    def gains(self, spectrum: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Per-bin gains for ``spectrum`` ``(B, k, bins)`` complex; returns (gains, hidden)."""
        power = torch.view_as_real(spectrum).square().sum(-1)
        features = F.layer_norm(torch.log(power + LOG_POWER_EPS), self.norm.normalized_shape, self.norm.weight,
                                self.norm.bias, self.norm.eps)
        features, hidden = self._gru(torch.relu(F.linear(features, self.encode.weight, self.encode.bias)), hidden)
        gains = torch.sigmoid(F.linear(features, self.decode.weight, self.decode.bias))
        return (gains.clamp_min(self.spec.gain_floor) if self.spec.gain_floor else gains), hidden

    def _gru(self, x: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """nn.GRU, minus its per-call wrapper cost (~30 us) when not training: same kernel."""
        if self.training or torch.is_grad_enabled():
            return self.gru(x, hidden)
        gru = self.gru
        return torch.gru(x, hidden, gru._flat_weights, gru.bias, gru.num_layers, 0.0, False, False, True)

    def _step_stft(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        history, tail, hidden = state
        batch, length = chunk.shape
        count = length // self.hop
        signal = torch.cat([history, chunk], dim=-1)  # (B, overlap + T)
        if count == 1 and self.frame == 2 * self.hop:
            return self._step_one_frame(signal, tail, hidden)
        frames = signal.unfold(-1, self.frame, self.hop) * self.window  # (B, k, frame)
        spectrum = self._rfft(frames)
        gains, hidden = self.gains(spectrum, hidden)
        enhanced = self._irfft(spectrum * gains) * self.window
        total = (count - 1) * self.hop + self.frame
        summed = F.fold(
            enhanced.transpose(1, 2), output_size=(1, total), kernel_size=(1, self.frame), stride=(1, self.hop)
        ).reshape(batch, total)
        overlap = self.frame - self.hop
        summed = torch.cat([summed[:, :overlap] + tail, summed[:, overlap:]], dim=-1)
        out = summed[:, :length]
        return out, (signal[:, length:], summed[:, length:], hidden)

    def _step_one_frame(self, signal: Tensor, tail: Tensor, hidden: Tensor) -> tuple[Tensor, State]:
        """The live path's common case (one hop, 50 % overlap) without unfold/fold: same maths."""
        spectrum = self._rfft((signal * self.window).unsqueeze(1))
        gains, hidden = self.gains(spectrum, hidden)
        enhanced = (self._irfft(spectrum * gains) * self.window).squeeze(1)
        out = enhanced[:, : self.hop] + tail
        return out, (signal[:, self.hop:], enhanced[:, self.hop:], hidden)
