"""Two scrolling waveform plots (noisy above, clean below) sharing the time axis."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg


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
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setYRange(-1, 1)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=True)
            self.curves.append(plot.plot(pen=pg.mkPen(colour, width=1)))
        self.set_window(seconds, sample_rate)

    def set_window(self, seconds: float, sample_rate: int) -> None:
        length = int(seconds * sample_rate)
        self.time_axis = np.linspace(-seconds, 0.0, length, dtype=np.float32)
        self.noisy_plot.setXRange(-seconds, 0, padding=0)

    def show(self, noisy: np.ndarray, clean: np.ndarray) -> None:
        """Draw two equal-length arrays (the newest sample last)."""
        if len(noisy) != len(self.time_axis):
            self.set_window(len(noisy) / 16000, 16000)
        self.curves[0].setData(self.time_axis[-len(noisy):], noisy, skipFiniteCheck=True)
        self.curves[1].setData(self.time_axis[-len(clean):], clean, skipFiniteCheck=True)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """What the plots currently hold (for tests)."""
        return self.curves[0].yData, self.curves[1].yData
