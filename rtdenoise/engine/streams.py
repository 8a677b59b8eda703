"""Many independent live streams of one model, stepped together as one batch per hop.

A call service carries hundreds of calls: stepping each alone costs a kernel
launch per layer per stream. Here every stream is one row of a batched state;
one ``model.step`` per hop advances all of them. Streams join and leave between
hops (a state row is added or removed) without touching the other rows, so each
stream's output is what it would be alone. On CUDA the batched step is replayed
from a graph captured once per batch-size bucket (1, 2, 4, ... rows; unused rows
of a bucket carry silence). A stream's digital silence is kept from its state as
the single-stream engine keeps it (:mod:`rtdenoise.engine.silence`), judged a hop at a
time: until its first sound, and once a silence has lasted 0.1 s, the stream's output
is silence and its state is what it was (a muted caller's statistics are not dragged to
nothing). On the CPU such rows are left out of the step (a muted caller costs no model
time); the fixed-shape CUDA graph steps them and their state is put back.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch

from rtdenoise.kernels.cuda_graph import GraphedStep
from rtdenoise.models import State, StreamingModel

from .silence import DIGITAL_SILENCE, QuietStream, hold_samples


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
        self._hold = hold_samples(model.hop, model.latency_samples, model.sample_rate)
        self._quiet: dict[Hashable, QuietStream] = {}  # the streams in digital silence (or yet to sound)

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
        self._quiet[stream_id] = QuietStream(self._hold)  # the model waits for its first sound

    def leave(self, stream_id: Hashable) -> None:
        """Remove a stream; the last row moves into its place, so the state stays dense."""
        row = self._ids.index(stream_id)
        last = len(self._ids) - 1
        state = self._graphed.state if self.graphs else self._state
        if row != last:
            self._copy_row(state, last, state, row)
            self._ids[row] = self._ids[last]
        self._ids.pop()
        self._quiet.pop(stream_id, None)
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
        quiet = self._quiet_rows(rows)
        waiting = np.array([row for row, keeper in quiet if keeper.waiting], dtype=np.int64)
        if self.graphs:
            if not self._ids:
                return rows.astype(np.float32)
            padded = np.zeros((self.capacity, self.hop), dtype=np.float32)
            padded[: len(rows)] = rows
            kept = self._take(waiting)  # a fixed-shape graph steps every row: the waiting ones are put back
            out = self._graphed(padded)[: len(rows)]
            self._put(waiting, kept)
        else:
            out = self._step_cpu(rows, waiting)
        out[waiting] = 0.0
        for row, keeper in quiet:
            memory = None if keeper.waiting else keeper.after_silent_hop(self.hop)
            if memory is not None:  # the silence has lasted: the memory from before it, and the stream waits
                self._copy_row(memory, 0, self._rows_state(), row)
        return out

    def _step_cpu(self, rows: np.ndarray, waiting: np.ndarray) -> np.ndarray:
        """The batched step of every row but the ``waiting`` ones (a muted caller costs no model time)."""
        if not len(waiting):
            with torch.inference_mode():
                enhanced, self._state = self.model.step(torch.from_numpy(np.ascontiguousarray(rows, np.float32))
                                                        .to(self.device), self._state)
            return enhanced.cpu().numpy()
        out = np.zeros((len(rows), self.hop), dtype=np.float32)
        active = np.setdiff1d(np.arange(len(rows)), waiting)
        if len(active):
            index = torch.from_numpy(active).to(self.device)
            with torch.inference_mode():
                part = tuple(s.index_select(dim, index) for s, dim in zip(self._state, self._dims))
                enhanced, part = self.model.step(torch.from_numpy(np.ascontiguousarray(rows[active], np.float32))
                                                 .to(self.device), part)
                for s, p, dim in zip(self._state, part, self._dims):
                    s.index_copy_(dim, index, p)
            out[active] = enhanced.cpu().numpy()
        return out

    def _take(self, rows: np.ndarray) -> State | None:
        if not len(rows):
            return None
        index = torch.from_numpy(rows).to(self.device)
        with torch.inference_mode():
            return tuple(s.index_select(dim, index) for s, dim in zip(self._rows_state(), self._dims))

    def _put(self, rows: np.ndarray, kept: State | None) -> None:
        if kept is not None:
            index = torch.from_numpy(rows).to(self.device)
            with torch.inference_mode():
                for s, k, dim in zip(self._rows_state(), kept, self._dims):
                    s.index_copy_(dim, index, k)

    def _quiet_rows(self, rows: np.ndarray) -> list[tuple[int, QuietStream]]:
        """The rows in digital silence this hop with their streams' keepers (made when a silence begins, with
        the memory from before it; dropped at the stream's next sound)."""
        silent = np.flatnonzero(np.abs(rows).max(axis=1) <= DIGITAL_SILENCE) if rows.size else np.zeros(0, int)
        if not len(silent) and not self._quiet:
            return []
        silent_ids = {self._ids[row] for row in silent}
        for stream_id in [s for s in self._quiet if s not in silent_ids]:  # they sound again
            keeper = self._quiet.pop(stream_id)
            if not keeper.waiting:  # a dropout ends: the stream goes on with its memory from before it
                row = self._ids.index(stream_id)
                with torch.inference_mode():
                    kept = self.model.with_memory_of(self._row(row), keeper.memory)
                    self._copy_row(kept, 0, self._rows_state(), row)
        quiet = []
        for row in silent:
            stream_id = self._ids[row]
            if stream_id not in self._quiet:
                with torch.inference_mode():
                    self._quiet[stream_id] = QuietStream(self._hold, memory=self.model.memory_only(self._row(row)))
            quiet.append((int(row), self._quiet[stream_id]))
        return quiet

    def _rows_state(self) -> State:
        return self._graphed.state if self.graphs else self._state

    def _row(self, row: int) -> State:
        """A copy of one stream's state (batch of one)."""
        return tuple(s.narrow(dim, int(row), 1).clone() for s, dim in zip(self._rows_state(), self._dims))

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
