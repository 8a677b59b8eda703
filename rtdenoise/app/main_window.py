"""The main window: source, output, model, compute device, noise reduction, start/stop, bypass, plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QMainWindow,
                               QProgressBar, QPushButton, QSizePolicy, QSlider, QSpinBox, QStackedWidget, QVBoxLayout,
                               QWidget)

from rtdenoise.files.audio_io import AUDIO_SUFFIXES
from rtdenoise.live.delay import delay_parts
from rtdenoise.live.runner import DeviceError, list_devices

from .controller import Controller, SessionRequest
from .spectrogram import SpectrogramView
from .waveforms import WaveformView


PLOT_INTERVAL_MS = 33
STATS_INTERVAL_MS = 1000
OPEN_CHECKPOINT = "Open checkpoint…"
REDUCTION_STEPS_DB = (6, 9, 12, 18, 24, 30, None)  # the slider's stops; None: no limit


class MainWindow(QMainWindow):
    def __init__(self, models: list[str], default_model: str, compute_devices: list[str],
                 settings=None) -> None:
        """``settings``: a QSettings to restore now and save on close (None: remember nothing)."""
        super().__init__()
        self.settings = settings
        self.setWindowTitle("rtdenoise — live speech denoising")
        self.resize(1000, 680)
        self.setAcceptDrops(True)
        self.controller = Controller()
        self.controller.error.connect(self.show_error)
        self.controller.stopped.connect(self._on_stopped)
        self.controller.started.connect(lambda text: self.statusBar().showMessage(f"running: {text}"))
        self.controller.notice.connect(lambda text: self.statusBar().showMessage(text, 10000))

        self.source_box = QComboBox()
        self.open_file_button = QPushButton("Open file…")
        self.output_box = QComboBox()
        self.model_box = QComboBox()
        self.compute_box = QComboBox()
        self.reduction_slider = QSlider(Qt.Orientation.Horizontal)
        self.reduction_slider.setRange(0, len(REDUCTION_STEPS_DB) - 1)
        self.reduction_slider.setValue(len(REDUCTION_STEPS_DB) - 1)
        self.reduction_slider.setPageStep(1)
        self.reduction_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.reduction_slider.setToolTip("How much noise may be removed: less keeps some of the room")
        self.reduction_label = QLabel()
        self.reduction_label.setMinimumWidth(140)
        self.start_button = QPushButton("Start")
        self.bypass_box = QCheckBox("Bypass (hear the raw input)")
        self.record_box = QCheckBox("Save cleaned audio…")
        self.virtual_mic_box = QCheckBox("Virtual microphone")
        self.virtual_mic_box.setToolTip("Offer the cleaned microphone to call apps as 'rtdenoise' "
                                        "(PulseAudio/PipeWire); the model rests while nobody records it")
        self.virtual_speaker_box = QCheckBox("Virtual speakers")
        self.virtual_speaker_box.setToolTip("Offer 'rtdenoise speakers' to call apps as an output: what they play "
                                            "there is denoised and played on your speakers (the other side's noise)")
        self.gate_box = QCheckBox("Voice gate")
        self.gate_box.setToolTip("Silence between words (adds 60 ms of latency); words are kept whole")
        self.gate_level = QSpinBox()
        self.gate_level.setRange(-80, -10)
        self.gate_level.setValue(-45)
        self.gate_level.setSuffix(" dBFS")
        self.gate_level.setToolTip("The cleaned voice's level below which the gate closes")
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long one wraps,
        self.banner.setMinimumWidth(0)                                                    # it never widens the window
        self.banner.setStyleSheet("QLabel { color: #8a1c1c; background: #fdecea; padding: 6px; border-radius: 4px; }")
        self.banner.hide()
        self.device_note = QLabel()
        self.device_note.setStyleSheet("QLabel { color: #555; }")
        self.waveforms = WaveformView()
        self.spectrograms = SpectrogramView()
        self.views = QStackedWidget()
        self.views.addWidget(self.waveforms)
        self.views.addWidget(self.spectrograms)
        self.view_box = QComboBox()
        self.view_box.addItems(["Waveforms", "Spectrograms"])
        self.view_box.setToolTip("Noisy and clean as waveforms (dBFS peaks) or as spectrograms (log frequency, dB)")
        self.view_box.currentIndexChanged.connect(self._view_chosen)
        self.noisy_meter, self.clean_meter = self._meter("#f1a9a0"), self._meter("#a9c8ef")
        self.stats_label = QLabel("stopped")
        self.statusBar().addPermanentWidget(self.stats_label)
        self.record_path: Path | None = None

        self._fill_devices()
        self.model_box.addItems(models + [OPEN_CHECKPOINT])
        self.model_box.setCurrentText(default_model)
        self.compute_box.addItems(compute_devices)
        self.compute_box.setCurrentText("cuda" if "cuda" in compute_devices else "cpu")
        self._layout()

        self.open_file_button.clicked.connect(self.choose_file)
        self.model_box.activated.connect(self._model_chosen)
        self.start_button.clicked.connect(self.toggle)
        self.bypass_box.toggled.connect(self.controller.set_bypass)
        self.reduction_slider.valueChanged.connect(self._reduction_changed)
        self._reduction_changed()
        self.record_box.toggled.connect(self._record_toggled)
        self.plot_timer = QTimer(self, interval=PLOT_INTERVAL_MS, timeout=self.refresh_plots)
        self.stats_timer = QTimer(self, interval=STATS_INTERVAL_MS, timeout=self.refresh_stats)
        if settings is not None:
            from rtdenoise.app import settings as remembered

            remembered.restore(self, settings)
        self._make_tray()

    # -- layout ----------------------------------------------------------------------
    def _meter(self, tint: str) -> QProgressBar:
        """A level meter in a light tint of its plot's colour, so its dark text stays readable."""
        meter = QProgressBar()
        meter.setRange(-60, 0)
        meter.setValue(-60)
        meter.setFormat("%v dBFS")
        meter.setMaximumWidth(160)
        meter.setStyleSheet("QProgressBar { color: #111; text-align: center; border: 1px solid #aaa; "
                            "border-radius: 3px; background: #f4f4f4; } "
                            f"QProgressBar::chunk {{ background: {tint}; }}")
        return meter

    def _layout(self) -> None:
        form = QFormLayout()
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_box, 1)
        source_row.addWidget(self.open_file_button)
        form.addRow("Source", source_row)
        form.addRow("Output", self.output_box)
        form.addRow("Model", self.model_box)
        form.addRow("Compute", self.compute_box)
        reduction_row = QHBoxLayout()
        slider_column = QVBoxLayout()
        slider_column.setSpacing(0)
        slider_column.addWidget(self.reduction_slider)
        ticks = QHBoxLayout()  # one label under each stop of the slider
        for index, db in enumerate(REDUCTION_STEPS_DB):
            tick = QLabel("all" if db is None else f"{db} dB")
            tick.setStyleSheet("QLabel { color: #666; font-size: 9pt; }")
            ticks.addWidget(tick)
            if index < len(REDUCTION_STEPS_DB) - 1:
                ticks.addStretch(1)
        slider_column.addLayout(ticks)
        self.reduction_ticks = ticks
        reduction_row.addLayout(slider_column, 1)
        reduction_row.addWidget(self.reduction_label)
        form.addRow("Noise reduction", reduction_row)
        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.bypass_box)
        controls.addWidget(self.record_box)
        controls.addWidget(self.virtual_mic_box)
        controls.addWidget(self.virtual_speaker_box)
        controls.addWidget(self.gate_box)
        controls.addWidget(self.gate_level)
        controls.addStretch(1)
        controls.addWidget(self.view_box)
        controls.addWidget(QLabel("noisy"))
        controls.addWidget(self.noisy_meter)
        controls.addWidget(QLabel("clean"))
        controls.addWidget(self.clean_meter)
        column = QVBoxLayout()
        column.addLayout(form)
        column.addWidget(self.device_note)
        column.addLayout(controls)
        column.addWidget(self.banner)
        column.addWidget(self.views, 1)
        central = QWidget()
        central.setLayout(column)
        self.setCentralWidget(central)

    def _fill_devices(self) -> None:
        try:
            inputs, outputs, reason = list_devices()
        except DeviceError as error:  # no PortAudio at all
            inputs, outputs, reason = [], [], str(error)
        for device in inputs:
            self.source_box.addItem(f"Microphone: {device['name']}", ("mic", device["index"]))
        self.output_box.addItem("None (do not play)", None)
        for device in outputs:
            self.output_box.addItem(f"Speakers: {device['name']}", device["index"])
        if outputs:
            self.output_box.setCurrentIndex(1)
        if reason:
            self.device_note.setText(f"No audio devices on this machine ({reason}). "
                                     "Files still play through the denoiser and are plotted.")
        else:
            self.device_note.setText(f"{len(inputs)} input and {len(outputs)} output devices found.")

    # -- user actions ------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio file", "",
                                              "Audio (" + " ".join(f"*{s}" for s in sorted(AUDIO_SUFFIXES)) + ")")
        if path:
            self.set_file(Path(path))

    def set_file(self, path: Path) -> None:
        """Make ``path`` the current source."""
        label = f"File: {path.name}"
        index = self.source_box.findText(label)
        if index < 0:
            self.source_box.addItem(label, ("file", str(path)))
            index = self.source_box.count() - 1
        self.source_box.setCurrentIndex(index)

    def set_model(self, name_or_path: str) -> None:
        """Select a shipped model by name, or add a checkpoint file to the list and select it."""
        index = self.model_box.findText(str(name_or_path))
        if index < 0 or str(name_or_path) == OPEN_CHECKPOINT:
            index = self.model_box.count() - 1  # before "Open checkpoint…"
            self.model_box.insertItem(index, str(name_or_path))
        self.model_box.setCurrentIndex(index)

    def _model_chosen(self, index: int) -> None:
        if self.model_box.itemText(index) != OPEN_CHECKPOINT:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Models (*.pt *.onnx)")
        if path:
            self.set_model(path)
        else:
            self.model_box.setCurrentIndex(0)

    def max_attenuation(self) -> float | None:
        """The slider's limit in dB, or None for no limit."""
        return REDUCTION_STEPS_DB[self.reduction_slider.value()]

    def _reduction_changed(self) -> None:
        db = self.max_attenuation()
        self.reduction_label.setText("full (no limit)" if db is None else f"at most {db} dB")
        self.controller.set_max_attenuation(db)

    def _record_toggled(self, on: bool) -> None:
        if on and self.record_path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save cleaned audio as", "cleaned.wav",
                                                  "WAV (*.wav);;FLAC (*.flac);;Ogg Vorbis (*.ogg)")
            if not path:
                self.record_box.setChecked(False)
                return
            self.record_path = Path(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.set_file(Path(url.toLocalFile()))
                break

    def toggle(self) -> None:
        if self.controller.runner is None:
            self.start()
        else:
            self.stop()

    def start(self) -> bool:
        self.banner.hide()
        data = self.source_box.currentData()
        if data is None:
            self.show_error("Choose a source first: open a file (or drop one here) or pick a microphone.")
            return False
        kind, value = data
        output = self.output_box.currentData()
        request = SessionRequest(
            model=self.model_box.currentText(), compute_device=self.compute_box.currentText(),
            input_file=Path(value) if kind == "file" else None, input_device=value if kind == "mic" else None,
            output_device=output, play=output is not None,
            record_path=self.record_path if self.record_box.isChecked() else None,
            max_attenuation_db=self.max_attenuation(),
            gate_db=float(self.gate_level.value()) if self.gate_box.isChecked() else None,
            virtual_mic="rtdenoise" if self.virtual_mic_box.isChecked() else None,
            virtual_speaker="rtdenoise" if self.virtual_speaker_box.isChecked() else None)
        if not self.controller.start(request):
            return False
        self.controller.set_bypass(self.bypass_box.isChecked())
        self._lock_session_settings(True)
        self.start_button.setText("Stop")
        self._tray_state(True)
        self.plot_timer.start()
        self.stats_timer.start()
        return True

    def stop(self) -> None:
        self.controller.stop()
        self._on_stopped("stopped")

    def _on_stopped(self, text: str) -> None:
        self.refresh_plots()
        self.refresh_stats()
        self.plot_timer.stop()
        self.stats_timer.stop()
        self._lock_session_settings(False)
        self.start_button.setText("Start")
        self._tray_state(False)
        self.statusBar().showMessage("finished" if text == "done" else text, 5000)

    def _lock_session_settings(self, running: bool) -> None:
        """Source, output, model, device and recording apply at Start: greyed out while a session runs.

        Bypass and the noise-reduction slider stay live; the voice gate applies at Start too.
        """
        for widget in (self.source_box, self.open_file_button, self.output_box, self.model_box, self.compute_box,
                       self.record_box, self.gate_box, self.gate_level, self.virtual_mic_box,
                       self.virtual_speaker_box):
            widget.setEnabled(not running)
        self.setAcceptDrops(not running)

    def show_error(self, text: str) -> None:
        self.banner.setText(f"⚠ {text}")
        self.banner.show()
        self.statusBar().showMessage(text, 10000)

    # -- timers (never block) ---------------------------------------------------------
    def refresh_plots(self) -> None:
        runner = self.controller.runner
        if runner is None:
            return
        noisy, clean = runner.noisy_history.latest(), runner.clean_history.latest()
        if self.views.currentWidget() is self.spectrograms:
            if self.spectrograms.sample_rate != runner.sample_rate:
                self.spectrograms.set_window(len(noisy) / runner.sample_rate, runner.sample_rate)
            self.spectrograms.plot(noisy, clean)
        else:
            self.waveforms.plot(noisy, clean)
        for meter, level in zip((self.noisy_meter, self.clean_meter), runner.levels):
            meter.setValue(meter_value(level))

    def _make_tray(self) -> None:
        """A tray icon (where the desktop has a tray) whose menu toggles denoising and shows the state."""
        from PySide6.QtGui import QAction
        from PySide6.QtWidgets import QMenu, QStyle, QSystemTrayIcon

        self.tray_menu = QMenu(self)
        self.tray_toggle = QAction("Start denoising", self, triggered=self.toggle)
        self.tray_menu.addAction(self.tray_toggle)
        self.tray_menu.addAction(QAction("Show window", self, triggered=self.showNormal))
        self.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaVolume), self)
            self.tray.setContextMenu(self.tray_menu)
            self.tray.setToolTip("rtdenoise: stopped")
            self.tray.show()

    def _tray_state(self, running: bool) -> None:
        self.tray_toggle.setText("Stop denoising" if running else "Start denoising")
        if self.tray is not None:
            self.tray.setToolTip("rtdenoise: denoising" if running else "rtdenoise: stopped")

    def _view_chosen(self, index: int) -> None:
        self.views.setCurrentIndex(index)
        self.refresh_plots()

    def refresh_stats(self) -> None:
        runner = self.controller.runner
        if runner is None:
            return
        self.controller.poll()
        s = runner.stats()
        position = "" if runner.file_info is None else \
            f"{clock_text(s['seconds'])} / {clock_text(runner.file_info.seconds)} | "
        self.stats_label.setText(
            position + f"latency {delay_parts(s)} | RTF {s['rtf']:.3f} | chunk {s['chunk_ms']:.0f} ms | "
            f"input overflows {s['input_overflows']} | output underflows {s['output_underflows']} | "
            f"dropped {s['dropped_ms']:.0f} ms"
            + (" | BYPASS" if s["bypass"] else "") + (" | virtual mic idle" if s["idle"] else "")
            + self._speakers_status())

    def _speakers_status(self) -> str:
        """The virtual speakers' part of the status bar (when they run)."""
        speakers = self.controller.speaker_runner
        if speakers is None:
            return ""
        s = speakers.stats()
        return (f" || speakers: RTF {s['rtf']:.3f} | underflows {s['output_underflows']}"
                + (" | paused" if s["idle"] else ""))

    def closeEvent(self, event) -> None:  # noqa: N802 (shutdown order: streams, worker, window)
        self.controller.stop()
        if self.settings is not None:
            from rtdenoise.app import settings as remembered

            remembered.save(self, self.settings)
        super().closeEvent(event)


def meter_value(level: float) -> int:
    """A level meter's reading in dBFS, -60..0, for any level (inf and NaN included)."""
    if not np.isfinite(level):
        return 0 if level > 0 else -60
    return int(round(min(0.0, max(-60.0, 20 * np.log10(abs(level) + 1e-9)))))


def clock_text(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a position in a file."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
