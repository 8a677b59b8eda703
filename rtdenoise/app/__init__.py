"""The PySide6 + pyqtgraph desktop app: the window, the waveform and spectrogram views, the controller
that owns a live runner, the saved settings.

May import live, files and ``rtdenoise.errors``; never torch at import time (the model loads when a
session starts), never the CLI.
"""
