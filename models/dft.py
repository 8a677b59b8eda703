"""The real FFT of one frame length as matrix products, for graphs that should not hold an FFT.

onnxruntime's DFT operator falls back to a direct O(n^2) loop for lengths that are not powers
of two (the models' 320-sample frames): five times slower there than two small matrix
products. A model uses :class:`FrameDFT` only after :meth:`StreamingModel.use_matrix_dft`
(the ONNX export); its outputs equal ``torch.fft.rfft`` / ``irfft`` within float32 rounding.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FrameDFT(nn.Module):
    """``rfft`` and ``irfft`` of ``n``-sample frames (complex spectra of ``n // 2 + 1`` bins)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        bins = n // 2 + 1
        angle = 2 * math.pi * torch.outer(torch.arange(n, dtype=torch.float64),
                                          torch.arange(bins, dtype=torch.float64)) / n   # (n, bins)
        self.register_buffer("forward_cos", torch.cos(angle).float(), persistent=False)
        self.register_buffer("forward_sin", (-torch.sin(angle)).float(), persistent=False)
        # inverse of a Hermitian spectrum: DC and Nyquist once, the other bins twice; their imaginary
        # parts at DC and Nyquist are ignored, as irfft does
        weight = torch.full((bins,), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        self.register_buffer("inverse_cos", (weight[:, None] * torch.cos(angle.T) / n).float(), persistent=False)
        sine = -weight[:, None] * torch.sin(angle.T) / n
        sine[0] = 0.0
        if n % 2 == 0:
            sine[-1] = 0.0
        self.register_buffer("inverse_sin", sine.float(), persistent=False)

    def rfft(self, frames: Tensor) -> Tensor:
        """``(..., n)`` real -> ``(..., bins)`` complex."""
        return torch.view_as_complex(torch.stack([frames @ self.forward_cos, frames @ self.forward_sin], dim=-1))

    def irfft(self, spectrum: Tensor) -> Tensor:
        """``(..., bins)`` complex -> ``(..., n)`` real."""
        parts = torch.view_as_real(spectrum)
        return parts[..., 0] @ self.inverse_cos + parts[..., 1] @ self.inverse_sin
