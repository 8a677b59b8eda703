"""The contract of a fixed-shape kernel: a model's step for one chunk shape, state held in place.

The engine hands such a kernel its carried state once (:meth:`load_state`),
then carries the kernel's own ``state`` tensors, which every call advances in
place; after a plain ``model.step`` the engine loads the new state back.
"""
from __future__ import annotations

import numpy as np

from rtdenoise.models import State


class FixedShapeStep:
    """Base of :class:`GraphedStep`, :class:`NumpyFIRStep` and :class:`NumpyGRUStep`."""

    shape: tuple[int, int]  # (channels, samples) of every chunk
    any_hop_multiple = False  # True: also runs chunks of any whole number of hops (same state)
    state: State            # the kernel's own tensors, in the model's state layout

    def load_state(self, state: State) -> None:
        """Make ``state`` the one the next call starts from."""
        for mine, value in zip(self.state, state):
            if mine is not value:
                mine.copy_(value.detach())

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """Enhance one ``shape`` float32 chunk and advance ``state``."""
        raise NotImplementedError
