"""Noisy and clean spectrograms side by side: log-frequency rows, dB colours, the latest seconds."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

FFT = 1024
ROWS = 160              # log-spaced frequency rows from LOWEST_HZ to the Nyquist frequency
LOWEST_HZ = 60.0
FRAMES = 400            # columns drawn over the window
LEVELS_DB = (-100.0, -20.0)


def log_frequency_matrix(sample_rate: int, rows: int = ROWS, fft: int = FFT) -> tuple[np.ndarray, np.ndarray]:
    """(rows, bins) averaging weights from FFT bins to log-spaced rows, and the rows' centre frequencies."""
    bins = np.fft.rfftfreq(fft, 1 / sample_rate)
    edges = np.geomspace(LOWEST_HZ, sample_rate / 2, rows + 1)
    weights = np.zeros((rows, len(bins)), np.float32)
    for row in range(rows):
        inside = (bins >= edges[row]) & (bins < edges[row + 1])
        if not inside.any():  # narrower than a bin at the bottom: take the nearest bin
            inside = np.abs(bins - np.sqrt(edges[row] * edges[row + 1])) == \
                np.abs(bins - np.sqrt(edges[row] * edges[row + 1])).min()
        weights[row, inside] = 1.0 / inside.sum()
    return weights, np.sqrt(edges[:-1] * edges[1:])


def spectrogram_db(samples: np.ndarray, sample_rate: int, weights: np.ndarray, frames: int = FRAMES) -> np.ndarray:
    """(frames, rows) power in dBFS of ``frames`` evenly spaced Hann frames over ``samples``."""
    if len(samples) < FFT:
        return np.full((frames, weights.shape[0]), LEVELS_DB[0], np.float32)
    starts = np.linspace(0, len(samples) - FFT, frames).astype(int)
    window = np.hanning(FFT).astype(np.float32)
    spectra = np.abs(np.fft.rfft(samples[starts[:, None] + np.arange(FFT)] * window, axis=1)) ** 2
    power = spectra @ weights.T * (4.0 / window.sum() ** 2)  # a full-scale sine reads about 0 dBFS
    return (10 * np.log10(power + 1e-12)).astype(np.float32)


class SpectrogramView(pg.GraphicsLayoutWidget):
    """Two images (noisy left, clean right) on one dB colour scale, frequency on a log axis."""

    def __init__(self, seconds: float = 5.0, sample_rate: int = 16000) -> None:
        super().__init__()
        self.setBackground("w")
        self.images, self.plots = [], []
        colours = pg.colormap.get("viridis")
        for column, title in enumerate(("noisy", "clean")):
            plot = self.addPlot(row=0, col=column, title=title)
            plot.setLabel("bottom", "seconds ago")
            plot.setLabel("left", "frequency (log), Hz")
            plot.setMouseEnabled(x=False, y=False)
            image = pg.ImageItem()
            image.setColorMap(colours)
            image.setLevels(LEVELS_DB)
            plot.addItem(image)
            self.images.append(image)
            self.plots.append(plot)
        # the colour bar in a column of its own, so that both panels (and their time axes) are equally wide
        self.colour_bar = pg.ColorBarItem(values=LEVELS_DB, colorMap=colours, label="dBFS", interactive=False)
        self.colour_bar.setImageItem(self.images)
        self.addItem(self.colour_bar, row=0, col=2)
        self.set_window(seconds, sample_rate)

    def set_window(self, seconds: float, sample_rate: int) -> None:
        self.seconds, self.sample_rate = seconds, sample_rate
        self.weights, centres = log_frequency_matrix(sample_rate)
        ticks = [(float(np.argmin(np.abs(centres - f))), f"{f / 1000:g}k" if f >= 1000 else f"{f:g}")
                 for f in (100, 300, 1000, 3000, 8000, 16000) if f < sample_rate / 2]
        for plot in self.plots:
            plot.getAxis("left").setTicks([ticks])
            plot.setXRange(-seconds, 0, padding=0)
            plot.setYRange(0, ROWS, padding=0)

    def plot(self, noisy: np.ndarray, clean: np.ndarray) -> None:
        self.latest = [spectrogram_db(x, self.sample_rate, self.weights) for x in (noisy, clean)]
        for image, values in zip(self.images, self.latest):
            image.setImage(values, autoLevels=False, levels=LEVELS_DB)
            image.setRect(-self.seconds, 0, self.seconds, ROWS)  # after the image: the scale follows its size
