"""Two scrolling waveform plots (noisy above, clean below) sharing the time axis."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg


COLUMNS = 1500  # min/max pairs drawn per plot: plenty for a window, cheap to draw


def envelope(samples: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """Peak envelope: interleaved (min, max) of ``columns`` equal slices, newest last."""
    usable = len(samples) - len(samples) % columns
    if usable < columns:
        return samples
    pieces = samples[len(samples) - usable:].reshape(columns, -1)
    out = np.empty(2 * columns, np.float32)
    out[0::2] = pieces.min(axis=1)
    out[1::2] = pieces.max(axis=1)
    return out


class WaveformView(pg.GraphicsLayoutWidget):
    """Shows the latest few seconds of the noisy and the clean signal."""

    def __init__(self, seconds: float = 5.0, sample_rate: int = 16000) -> None:
        super().__init__()
        self.setBackground("w")
        self.noisy_plot = self.addPlot(row=0, col=0, title="noisy")
        self.clean_plot = self.addPlot(row=1, col=0, title="clean")
        self.clean_plot.setXLink(self.noisy_plot)
        self.clean_plot.setYLink(self.noisy_plot)
        self.clean_plot.setLabel("bottom", "seconds ago")
        self.curves = []
        for plot, colour in ((self.noisy_plot, (200, 60, 50)), (self.clean_plot, (40, 110, 200))):
            plot.setYRange(-1, 1)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=True)
            self.curves.append(plot.plot(pen=pg.mkPen(colour, width=1)))
        self.set_window(seconds, sample_rate)

    def set_window(self, seconds: float, sample_rate: int) -> None:
        self.seconds = seconds
        self.time_axis = np.linspace(-seconds, 0.0, 2 * COLUMNS, dtype=np.float32)
        self.noisy_plot.setXRange(-seconds, 0, padding=0)

    def plot(self, noisy: np.ndarray, clean: np.ndarray) -> None:
        """Draw the peak envelopes of two equal-length arrays (the newest sample last)."""
        self.raw = (noisy, clean)
        for curve, samples in zip(self.curves, (noisy, clean)):
            shape = envelope(samples)
            axis = self.time_axis if len(shape) == len(self.time_axis) else \
                np.linspace(-self.seconds, 0.0, len(shape), dtype=np.float32)
            curve.setData(axis, shape, skipFiniteCheck=True)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples behind the current plots (for tests)."""
        return getattr(self, "raw", (None, None))
