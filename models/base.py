"""The streaming contract every rtdenoise model follows.

A model maps a noisy waveform ``(batch, time)`` to an enhanced one of the same
shape. ``step`` consumes a chunk whose length is a multiple of ``hop`` and
carries an explicit state; ``forward`` *is* ``step`` from ``init_state`` so the
offline and streaming paths cannot drift apart.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class StreamingModel(nn.Module):
    """Base class: subclasses set the attributes and implement the three methods.

    Attributes:
        arch: registry name of the architecture ("mimo_cnn", "gru").
        sample_rate: rate in Hz the weights expect.
        hop: ``step`` takes chunks of ``k * hop`` samples.
        latency_samples: ``out[n]`` estimates ``clean[n - latency_samples]``.
    """

    arch: str = ""
    sample_rate: int = 16000
    hop: int = 1
    latency_samples: int = 0
    keeps_initial: tuple[str, ...] = ()  # layers a grown model keeps at their random start (training.warm_start)

    def spec_dict(self) -> dict[str, Any]:
        """The plain-dict spec that rebuilds this model (stored in checkpoints)."""
        raise NotImplementedError

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """Zero state for ``batch`` independent streams."""
        raise NotImplementedError

    def state_names(self) -> tuple[str, ...]:
        """One name per entry of the state, in order (the ONNX export's input and output names)."""
        raise NotImplementedError

    def step(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        """Process ``chunk`` ``(batch, k * hop)``; returns ``(enhanced, new_state)``."""
        raise NotImplementedError

    def forward(self, noisy: Tensor) -> Tensor:
        """Whole-signal enhancement ``(batch, N) -> (batch, N)``, N a multiple of ``hop``.

        Output sample n estimates clean sample ``n - latency_samples``.
        """
        if noisy.shape[-1] % self.hop:
            raise ValueError(f"length {noisy.shape[-1]} is not a multiple of hop {self.hop}")
        out, _ = self.step(noisy, self.init_state(noisy.shape[0], noisy.device))
        return out

    def memory_only(self, state: State) -> State:
        """Keep what the model learned about the stream (recurrent memory), zero the
        sample buffers; used to warm a state up on audio that is then played again."""
        return self.init_state(state[0].shape[0] if state else 1, state[0].device if state else None)

    def with_memory_of(self, state: State, earlier: State) -> State:
        """``state``'s sample buffers with ``earlier``'s memory (what :meth:`memory_only` keeps): after a
        dropout of digital silence the model goes on as it was before it (rtdenoise/engine/silence.py).
        Models without memory: ``state``."""
        return state

    def use_matrix_dft(self) -> None:
        """Compute the model's FFTs as matrix products from now on (for the ONNX export; same
        results within float32 rounding). Models without FFTs have nothing to change."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")
