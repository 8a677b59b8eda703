"""A model's ``step`` for one fixed chunk shape, captured once as a CUDA graph.

Launching a small recurrent step on a GPU costs far more in kernel launches
than in arithmetic; replaying a captured graph launches them all at once. The
graph reads a static input tensor and the static state tensors and writes the
new state back into them, so the carried state never leaves the device: the
only host transfers are the chunk in and the enhanced chunk out.
"""
from __future__ import annotations

import numpy as np
import torch

from rtdenoise.models import State, StreamingModel

from .fixed_step import FixedShapeStep


class GraphedStep(FixedShapeStep):
    """``model.step`` on ``(channels, samples)`` chunks, replayed from a CUDA graph."""

    def __init__(self, model: StreamingModel, state: State, channels: int, samples: int) -> None:
        device = state[0].device
        self.shape = (channels, samples)
        self.input = torch.zeros(self.shape, device=device)
        self.state = tuple(s.clone() for s in state)
        self._host_in = torch.zeros(self.shape).pin_memory()
        self._host_out = torch.zeros(self.shape).pin_memory()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode():
            with torch.cuda.stream(side):  # warm-up outside the graph (workspaces, caches)
                scratch = tuple(s.clone() for s in self.state)
                for _ in range(3):
                    _, scratch = model.step(self.input, scratch)
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output, new_state = model.step(self.input, self.state)
                for static, new in zip(self.state, new_state):
                    if new is not static:
                        static.copy_(new)
        self._stream = torch.cuda.current_stream(device)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance one ``(channels, samples)`` float32 chunk; the state advances on the device."""
        self._host_in.numpy()[...] = chunk
        self.input.copy_(self._host_in, non_blocking=True)
        self.graph.replay()
        self._host_out.copy_(self.output, non_blocking=True)
        self._stream.synchronize()
        return self._host_out.numpy().copy()
