"""Two scrolling waveform plots (noisy above, clean below) sharing the time axis."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg


COLUMNS = 1500  # min/max pairs drawn per plot: plenty for a window, cheap to draw
MIN_RANGE = 0.01  # the y axis never zooms in further (-40 dBFS): silence must not look like noise


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
            plot.disableAutoRange()  # the range is ours (autorange below): pyqtgraph's would fight it via the link
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
        peak = 0.0
        for curve, samples, plot, name in zip(self.curves, (noisy, clean), (self.noisy_plot, self.clean_plot),
                                               ("noisy", "clean")):
            shape = envelope(samples)
            axis = self.time_axis if len(shape) == len(self.time_axis) else \
                np.linspace(-self.seconds, 0.0, len(shape), dtype=np.float32)
            curve.setData(axis, shape, skipFiniteCheck=True)
            level = float(np.abs(shape).max()) if len(shape) else 0.0
            level = level if np.isfinite(level) else 1.0
            peak = max(peak, level)
            plot.setTitle(f"{name} (peak {20 * np.log10(level):.0f} dBFS)" if level > 1e-6 else f"{name} (silent)")
        self.autorange(peak)

    def autorange(self, peak: float) -> None:
        """Fit the y axis to the loudest of the two (both share it), so quiet speech is visible."""
        target = max(MIN_RANGE, min(1.0, 1.15 * peak))
        current = getattr(self, "y_range", 1.0)
        if target > current or target < 0.7 * current:  # grow at once, shrink only when clearly smaller
            self.y_range = target
            for plot in (self.noisy_plot, self.clean_plot):
                plot.setYRange(-target, target, padding=0)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples behind the current plots (for tests)."""
        return getattr(self, "raw", (None, None))
