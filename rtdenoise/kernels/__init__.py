"""Fixed-shape fast paths of ``model.step``: numpy kernels for the CPU, a CUDA graph for the GPU.

Each equals the model's own step within float32 rounding (tested); the engine picks one
per model and device (``rtdenoise.engine.denoiser._fast_kind``).
May import ``rtdenoise.models`` only: the engine uses the kernels, not the other way round.
"""
from .band_kernel import NumpyBandStep
from .cuda_graph import GraphedStep
from .fir_kernel import NumpyFIRStep
from .fixed_step import FixedShapeStep
from .gru_kernel import NumpyGRUStep

__all__ = ["FixedShapeStep", "GraphedStep", "NumpyBandStep", "NumpyFIRStep", "NumpyGRUStep"]
