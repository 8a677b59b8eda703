"""The STFT frame of the CPU kernels: half-overlapping sqrt-Hann frames in, overlap-add out."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft
from threadpoolctl import ThreadpoolController

from .fixed_step import FixedShapeStep


@lru_cache(maxsize=1)
def blas_threads() -> ThreadpoolController:
    """The process's BLAS libraries (found once: it takes milliseconds)."""
    return ThreadpoolController()


class HalfOverlapSTFTStep(FixedShapeStep):
    """A chunk of whole hops → frames of two hops → ``_enhance(spectrum)`` → overlap-add.

    Subclasses set ``_hop``, ``_window`` (sqrt-Hann, two hops), ``_history`` and ``_tail``
    (``(C, hop)`` arrays that belong to the carried state) and implement :meth:`_enhance`.
    """

    any_hop_multiple = True

    def _enhance(self, spectrum: np.ndarray) -> np.ndarray:
        """The enhanced ``(C, k, bins)`` spectrum; the recurrent state advances."""
        raise NotImplementedError

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance a ``(channels, k * hop)`` float32 chunk; the state advances in place."""
        hop = self._hop
        channels, samples = chunk.shape
        signal = np.concatenate([self._history, chunk], axis=1)
        frames = signal[:, None] if samples == hop else sliding_window_view(signal, 2 * hop, axis=1)[:, ::hop]
        spectrum = fft.rfft(frames * self._window, axis=-1)  # (C, k, bins)
        if samples == hop:  # the live path: its products are too small to start OpenBLAS's threads
            enhanced = self._enhance(spectrum)
        else:  # a block's are not; measured, two threads took twice the CPU time and no less wall time
            with blas_threads().limit(limits=1, user_api="blas"):
                enhanced = self._enhance(spectrum)
        frames_out = fft.irfft(enhanced, n=2 * hop, axis=-1)
        frames_out *= self._window
        out = frames_out[:, :, :hop].copy()  # overlap-add of half-overlapping frames
        out[:, 0] += self._tail
        out[:, 1:] += frames_out[:, :-1, hop:]
        self._tail[...] = frames_out[:, -1, hop:]
        self._history[...] = signal[:, -hop:]
        return out.reshape(channels, samples)
