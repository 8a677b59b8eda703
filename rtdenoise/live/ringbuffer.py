"""Preallocated rings between the audio callbacks, the worker and the plots.

:class:`AudioRing` is single-writer / single-reader: the writer copies, then
publishes its index; the reader never blocks the writer. On overflow the oldest
audio is dropped and counted. :class:`HistoryRing` keeps the latest N samples
in a mirrored 2N buffer so a plot can take one contiguous slice.
"""
from __future__ import annotations

import numpy as np


class AudioRing:
    """Fixed-capacity ``(frames, channels)`` float32 FIFO."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.capacity = capacity
        self.channels = channels
        self.buffer = np.zeros((capacity, channels), np.float32)
        self.written = 0  # total frames ever written (writer owns)
        self.read_count = 0  # total frames ever read (reader owns; writer bumps on overflow)
        self.dropped = 0

    @property
    def available(self) -> int:
        return self.written - self.read_count

    def write(self, block: np.ndarray) -> None:
        frames = len(block)
        if frames > self.capacity:  # keep only what fits
            self.dropped += frames - self.capacity
            block, frames = block[-self.capacity:], self.capacity
        overflow = self.available + frames - self.capacity
        if overflow > 0:
            self.dropped += overflow
            self.read_count += overflow
        start = self.written % self.capacity
        first = min(frames, self.capacity - start)
        self.buffer[start:start + first] = block[:first]
        self.buffer[: frames - first] = block[first:]
        self.written += frames  # publish after the copy

    def read(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Up to ``frames`` of the oldest audio (fewer if fewer are there)."""
        frames = min(frames, self.available)
        out = np.empty((frames, self.channels), np.float32) if out is None else out[:frames]
        start = self.read_count % self.capacity
        first = min(frames, self.capacity - start)
        out[:first] = self.buffer[start:start + first]
        out[first:frames] = self.buffer[: frames - first]
        self.read_count += frames
        return out

    def skip(self, frames: int) -> int:
        """Drop up to ``frames`` of the oldest audio (the reader's side); how many were dropped."""
        frames = min(frames, self.available)
        self.read_count += frames
        return frames

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (an output callback's buffer); zeros where audio is missing. Returns the shortfall."""
        got = min(len(out), self.available)
        self.read(got, out)
        out[got:] = 0.0
        return len(out) - got



class HistoryRing:
    """The latest ``length`` mono samples, readable as one contiguous array."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.buffer = np.zeros(2 * length, np.float32)
        self.position = 0
        self.total = 0

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)[-self.length:]
        n = len(samples)
        end = self.position + n
        if end <= self.length:
            self.buffer[self.position:end] = samples
            self.buffer[self.position + self.length:end + self.length] = samples
        else:
            first = self.length - self.position
            self.buffer[self.position:self.length] = samples[:first]
            self.buffer[self.position + self.length:] = samples[:first]
            self.buffer[: n - first] = samples[first:]
            self.buffer[self.length:self.length + n - first] = samples[first:]
        self.position = end % self.length
        self.total += n

    def latest(self) -> np.ndarray:
        """A view of the last ``length`` samples, oldest first."""
        return self.buffer[self.position:self.position + self.length]
