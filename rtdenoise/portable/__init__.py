"""The model as a portable ONNX file: one chunk of audio in, one out, every piece of carried state an
explicit input and output.

``export`` writes the file from a checkpoint (torch -> ONNX, metadata, ``onnx.checker``);
``metadata`` is the file's contract (names, shapes, initial values, rates) and its checks;
``runtime_model`` steps a file with onnxruntime behind the streaming contract, so the engine,
``denoise``, ``live``, ``bench`` and the app run it as ``--backend onnx``.
May import ``rtdenoise.models`` only (and onnx / onnxruntime, loaded when used).
"""
from .metadata import FORMAT, FORMAT_VERSION, OnnxInfo, StateEntry
from .runtime_model import OnnxModel, load_onnx_model

__all__ = ["FORMAT", "FORMAT_VERSION", "OnnxInfo", "OnnxModel", "StateEntry", "load_onnx_model"]
