"""A MIMO CNN's step on the CPU for one fixed chunk shape, in numpy with no allocation.

For the small lab CNN the arithmetic per 10 ms chunk is tiny (about 64k
multiply-adds); PyTorch's per-operator overhead (cat, conv1d, tanh, slicing)
costs several times more. Here each layer keeps one time-major buffer
``(channels, K-1+T, F)``: its first ``K-1`` rows are the carried history, the
last ``T`` rows the layer's input. The ``K`` taps times ``F`` features of every
output sample are then one contiguous run of that buffer, so a layer is a copy
of a strided window view into a scratch matrix and one BLAS product. Same
maths as :meth:`MimoCNN.step` (float32; tested equal within rounding).
"""
from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import as_strided

from rtdenoise.models import MimoCNN, State

from .fixed_step import FixedShapeStep


# OpenBLAS runs a product of m*n*k below this on the calling thread; above it, it
# starts its own threads, which ignore torch's thread setting and, on a busy
# machine, cost milliseconds of jitter per chunk. Larger CNNs stay with PyTorch.
SINGLE_THREAD_PRODUCT = 65536 * 4


class NumpyFIRStep(FixedShapeStep):
    """``MimoCNN.step`` on ``(channels, samples)`` chunks, computed with preallocated numpy buffers."""

    @staticmethod
    def suits(model: MimoCNN, samples: int) -> bool:
        """True when every layer's product is small enough to stay on one thread (and be fast here)."""
        return all(samples * h.shape[0] * h.shape[1] * h.shape[2] <= SINGLE_THREAD_PRODUCT for h in model.taps)

    def __init__(self, model: MimoCNN, state: State, channels: int, samples: int) -> None:
        taps = [h.detach().cpu().numpy() for h in model.taps]  # H_{l,k}: (K, F_in, F_out)
        self.shape = (channels, samples)
        self._buffers = [np.zeros((channels, k - 1 + samples, f_in), np.float32) for k, f_in, _ in
                         (h.shape for h in taps)]
        # Row k*F_in + f of the weights multiplies x[n - (K-1-k)] feature f.
        self._weights = [np.ascontiguousarray(h[::-1].reshape(-1, h.shape[2])) for h in taps]
        self._windows = [as_strided(b, (channels, samples, h.shape[0] * h.shape[1]), b.strides, writeable=False)
                         for b, h in zip(self._buffers, taps)]
        self._scratch = [np.empty(w.shape, np.float32) for w in self._windows]
        self._outputs = [np.empty((channels, samples, h.shape[2]), np.float32) for h in taps]
        self._history = [h.shape[0] - 1 for h in taps]
        # The carried state, as the model lays it out (B, F_in, K-1): views of the buffers' history rows.
        self.state: State = tuple(torch.from_numpy(b[:, :k]).transpose(1, 2)
                                  for b, k in zip(self._buffers, self._history))
        self.load_state(state)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance one ``(channels, samples)`` float32 chunk; the history advances in place."""
        samples = self.shape[1]
        buffers, last = self._buffers, len(self._buffers) - 1
        buffers[0][:, -samples:, 0] = chunk
        for index, (window, scratch, weights, out) in enumerate(
                zip(self._windows, self._scratch, self._weights, self._outputs)):
            np.copyto(scratch, window)
            np.matmul(scratch, weights, out=out)
            if index != last:
                np.tanh(out, out=buffers[index + 1][:, -samples:, :])
        for buffer, keep in zip(buffers, self._history):
            if keep:
                buffer[:, :keep] = buffer[:, samples:samples + keep]
        return out[:, :, 0].copy()
