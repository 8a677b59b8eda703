"""The app remembers its choices between runs (QSettings): devices, model, limit, gate, virtual mic and
speakers, geometry."""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox

COMBOS = {"source": "source_box", "output": "output_box", "model": "model_box", "compute": "compute_box",
          "view": "view_box"}


def app_settings() -> QSettings:
    """The user's settings file (~/.config/rtdenoise/rtdenoise.conf on Linux)."""
    return QSettings("rtdenoise", "rtdenoise")


def save(window, settings: QSettings) -> None:
    for key, attribute in COMBOS.items():
        settings.setValue(key, getattr(window, attribute).currentText())
    settings.setValue("reduction_step", window.reduction_slider.value())
    settings.setValue("gate_on", window.gate_box.isChecked())
    settings.setValue("gate_dbfs", window.gate_level.value())
    settings.setValue("virtual_mic", window.virtual_mic_box.isChecked())
    settings.setValue("virtual_speaker", window.virtual_speaker_box.isChecked())
    settings.setValue("geometry", window.saveGeometry())
    settings.sync()


def restore(window, settings: QSettings) -> None:
    """Put back what was saved; a device or model that is gone now keeps the current choice."""
    for key, attribute in COMBOS.items():
        _select(getattr(window, attribute), settings.value(key))
    step = _as_int(settings.value("reduction_step"))
    if step is not None and 0 <= step <= window.reduction_slider.maximum():
        window.reduction_slider.setValue(step)
    window.gate_box.setChecked(str(settings.value("gate_on", "false")).lower() == "true")
    window.virtual_mic_box.setChecked(str(settings.value("virtual_mic", "false")).lower() == "true")
    window.virtual_speaker_box.setChecked(str(settings.value("virtual_speaker", "false")).lower() == "true")
    level = _as_int(settings.value("gate_dbfs"))
    if level is not None:
        window.gate_level.setValue(level)
    geometry = settings.value("geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)


def _select(box: QComboBox, text) -> None:
    index = box.findText(str(text)) if text else -1
    if index >= 0:
        box.setCurrentIndex(index)


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
