"""Many independent live streams of one model, stepped together as one batch per hop.

A call service carries hundreds of calls: stepping each alone costs a kernel
launch per layer per stream. Here every stream is one row of a batched state;
one ``model.step`` per hop advances all of them. Streams join and leave between
hops (a state row is added or removed) without touching the other rows, so each
stream's output is what it would be alone. On CUDA the batched step is replayed
from a graph captured once per batch-size bucket (1, 2, 4, ... rows; unused rows
of a bucket carry silence). Unlike the single-stream engine, the batch feeds a
stream's digital silence to the model (see :mod:`rtdenoise.engine.silence`).
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch

from rtdenoise.kernels.cuda_graph import GraphedStep
from rtdenoise.models import State, StreamingModel


def state_batch_dims(model: StreamingModel) -> tuple[int, ...]:
    """Which dimension of each state tensor indexes the stream (a GRU's hidden state has it second)."""
    one, two = model.init_state(1, "cpu"), model.init_state(2, "cpu")
    return tuple(next(d for d, (a, b) in enumerate(zip(x.shape, y.shape)) if a != b) for x, y in zip(one, two))


def _bucket(rows: int) -> int:
    return 1 << max(0, rows - 1).bit_length()


class MultiStreamEngine:
    """Streams of ``model`` keyed by any hashable id; :meth:`step` takes and returns one hop per stream."""

    def __init__(self, model: StreamingModel, device: str | torch.device = "cpu", graphs: bool | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.hop = model.hop
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self._dims = state_batch_dims(model)
        self._fresh = model.init_state(1, self.device)
        self._ids: list[Hashable] = []
        self._state: State = model.init_state(0, self.device)  # CPU: exactly one row per stream
        self._graphed: GraphedStep | None = None                # CUDA: a bucket's static state

    @property
    def streams(self) -> list[Hashable]:
        return list(self._ids)

    @property
    def capacity(self) -> int:
        """Rows stepped per hop: the streams, or on CUDA the bucket that holds them."""
        return self._graphed.shape[0] if self._graphed is not None else len(self._ids)

    def join(self, stream_id: Hashable) -> None:
        """Add a stream with fresh state; the others are untouched."""
        if stream_id in self._ids:
            raise ValueError(f"stream {stream_id!r} has already joined")
        row = len(self._ids)
        if self.graphs:
            if self._graphed is None or row + 1 > self.capacity:
                self._grow(_bucket(row + 1))
            self._copy_row(self._fresh, 0, self._graphed.state, row)
        else:
            self._state = tuple(torch.cat([s, f], dim) for s, f, dim in zip(self._state, self._fresh, self._dims))
        self._ids.append(stream_id)

    def leave(self, stream_id: Hashable) -> None:
        """Remove a stream; the last row moves into its place, so the state stays dense."""
        row = self._ids.index(stream_id)
        last = len(self._ids) - 1
        state = self._graphed.state if self.graphs else self._state
        if row != last:
            self._copy_row(state, last, state, row)
            self._ids[row] = self._ids[last]
        self._ids.pop()
        if not self.graphs:
            self._state = tuple(s.narrow(dim, 0, last).clone() for s, dim in zip(self._state, self._dims))

    def step(self, hops: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        """One hop (``hop`` float32 samples) of every stream in, one enhanced hop of each out."""
        missing = [s for s in self._ids if s not in hops]
        if missing:
            raise KeyError(f"no audio for stream(s) {missing[:3]} in this hop")
        rows = np.zeros((len(self._ids), self.hop), dtype=np.float32)
        for row, stream_id in enumerate(self._ids):
            rows[row] = hops[stream_id]
        out = self.step_rows(rows)
        return {stream_id: out[row] for row, stream_id in enumerate(self._ids)}

    def step_rows(self, rows: np.ndarray) -> np.ndarray:
        """One hop of every stream as a ``(streams, hop)`` array in :attr:`streams` order (no dict per hop)."""
        if rows.shape != (len(self._ids), self.hop):
            raise ValueError(f"expected ({len(self._ids)}, {self.hop}) samples, got {rows.shape}")
        if self.graphs:
            if not self._ids:
                return rows.astype(np.float32)
            padded = np.zeros((self.capacity, self.hop), dtype=np.float32)
            padded[: len(rows)] = rows
            return self._graphed(padded)[: len(rows)]
        with torch.inference_mode():
            enhanced, self._state = self.model.step(torch.from_numpy(np.ascontiguousarray(rows, np.float32))
                                                    .to(self.device), self._state)
        return enhanced.cpu().numpy()

    def _grow(self, rows: int) -> None:
        graphed = GraphedStep(self.model, self.model.init_state(rows, self.device), rows, self.hop)
        if self._graphed is not None:
            for row in range(len(self._ids)):
                self._copy_row(self._graphed.state, row, graphed.state, row)
        self._graphed = graphed

    def _copy_row(self, source: State, src: int, target: State, dst: int) -> None:
        with torch.inference_mode():
            for s, t, dim in zip(source, target, self._dims):
                t.narrow(dim, dst, 1).copy_(s.narrow(dim, src, 1))
