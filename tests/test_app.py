"""The desktop app offscreen: builds, plays a recorded file into both plots, bypass, restart, errors."""
from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from rtdenoise.app.main_window import MainWindow  # noqa: E402


@pytest.fixture
def window(qtbot, small_model_path):
    win = MainWindow([small_model_path], small_model_path, ["cpu"])
    qtbot.addWidget(win)
    win.output_box.setCurrentIndex(0)  # no speakers: paced by a clock
    win.show()
    yield win
    win.controller.stop()


def _plots_filled(win) -> bool:
    noisy, clean = win.waveforms.data()
    return noisy is not None and np.abs(noisy[-8000:]).max() > 0.01 and np.abs(clean[-8000:]).max() > 0.001


def test_window_builds_with_every_control(window):
    assert window.start_button.text() == "Start"
    assert window.model_box.count() >= 2 and window.compute_box.currentText() == "cpu"
    assert window.output_box.itemText(0).startswith("None")


def test_file_fills_both_plots_and_clean_differs(window, qtbot, noisy_path):
    window.set_file(noisy_path)
    assert window.start()
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)
    noisy, clean = window.waveforms.data()
    assert not np.allclose(noisy[-8000:], clean[-8000:], atol=1e-3)
    window.refresh_stats()
    text = window.stats_label.text()
    assert "latency 20 ms + 0 ms device buffers |" in text, text  # a file, no output: no device, no cushion
    assert re.match(r"0:0[0-5] / 0:05 \| ", text), text  # position in the 5 s file


def test_clock_text():
    from rtdenoise.app.main_window import clock_text

    assert [clock_text(s) for s in (0, 5.9, 65, 3600 + 61)] == ["0:00", "0:05", "1:05", "1:01:01"]


def test_bypass_makes_clean_equal_noisy(window, qtbot, noisy_path):
    window.set_file(noisy_path)
    window.bypass_box.setChecked(True)
    assert window.start()
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)
    qtbot.wait(300)
    runner = window.controller.runner
    noisy, clean = runner.noisy_history.latest()[-4000:], runner.clean_history.latest()[-4000:]
    assert np.array_equal(noisy, clean)


def test_stop_and_restart(window, qtbot, noisy_path):
    window.set_file(noisy_path)
    assert window.start()
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)
    window.stop()
    assert window.controller.runner is None and window.start_button.text() == "Start"
    assert window.start()
    qtbot.waitUntil(lambda: window.controller.runner is not None and window.controller.runner.frames_processed > 0,
                    timeout=10000)
    window.stop()


def test_bad_file_shows_an_error_and_the_app_lives_on(window, qtbot, tmp_path, noisy_path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    window.set_file(bad)
    assert not window.start()
    assert window.banner.isVisible() and "broken.wav" in window.banner.text()
    window.set_file(noisy_path)
    assert window.start()  # still works afterwards
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)


@pytest.mark.parametrize("name,kind", [("rec.wav", "WAV"), ("rec.flac", "FLAC")])
def test_recording_keeps_what_was_played(window, qtbot, tmp_path, noisy_path, name, kind):
    import soundfile as sf

    window.record_path = tmp_path / name  # what the save dialog returns; its extension picks the format
    window.record_box.setChecked(True)
    window.set_file(noisy_path)
    assert window.start()
    # the recording is lined up with the input (the model's latency left out): wait past 1 s plus that
    qtbot.waitUntil(lambda: window.controller.runner.frames_processed > 16000 + 1600, timeout=10000)
    window.stop()
    info = sf.info(str(tmp_path / name))
    assert info.frames > 16000 and info.format == kind


def test_gui_command_screenshot(tmp_path, noisy_path):
    shot = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "rtdenoise", "gui", "--input", str(noisy_path), "--no-output",
                             "--screenshot", str(shot), "--quit-after", "2.5"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "propagateSizeHints" not in result.stderr
    assert shot.stat().st_size > 10000
    settings = Path(os.environ["XDG_CONFIG_HOME"]) / "rtdenoise" / "rtdenoise.conf"
    settings.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-m", "rtdenoise", "gui", "--input", str(noisy_path), "--no-output",
                             "--view", "spectrograms", "--quit-after", "1.5"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0 and "view=Spectrograms" in settings.read_text(), result.stderr  # it opened there


def test_a_device_that_fails_to_open_is_shown_and_the_app_lives_on(window, qtbot, noisy_path):
    window.output_box.addItem("Speakers: vanished device", 9999)
    window.output_box.setCurrentIndex(window.output_box.count() - 1)
    window.set_file(noisy_path)
    assert not window.start()
    assert window.banner.isVisible() and "device" in window.banner.text().lower()
    assert window.start_button.text() == "Start"
    window.output_box.setCurrentIndex(0)
    assert window.start()
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)


def test_the_noise_reduction_slider_limits_a_running_session(window, qtbot, noisy_path):
    from rtdenoise.app.main_window import REDUCTION_STEPS_DB

    assert window.max_attenuation() is None and "no limit" in window.reduction_label.text()
    window.set_file(noisy_path)
    assert window.start()
    engine = window.controller.runner.engine
    assert engine.max_attenuation_db is None
    window.reduction_slider.setValue(REDUCTION_STEPS_DB.index(12))
    assert "12 dB" in window.reduction_label.text()
    qtbot.waitUntil(lambda: engine.max_attenuation_db == 12, timeout=5000)  # applied by the worker
    window.stop()
    window.reduction_slider.setValue(REDUCTION_STEPS_DB.index(6))
    assert window.start()  # a new session starts with the slider's limit
    assert window.controller.runner.engine.max_attenuation_db == 6


def test_a_checkpoint_file_given_as_model_is_listed_selected_and_used(qtbot, small_model_path, noisy_path):
    win = MainWindow(["gru"], "gru", ["cpu"])
    qtbot.addWidget(win)
    win.output_box.setCurrentIndex(0)
    win.set_model(small_model_path)
    assert win.model_box.currentText() == small_model_path
    assert win.model_box.itemText(win.model_box.count() - 1) == "Open checkpoint…"  # still last
    win.set_file(noisy_path)
    assert win.start()
    assert win.controller.runner.model.num_parameters() < 300_000  # the small GRU, not the shipped one
    win.controller.stop()


@pytest.mark.parametrize("arguments,expected", [(["--input", "missing.wav"], "no such file"),
                                                (["--model", "nonexistent"], "no such shipped model"),
                                                (["--quit-after", "-1"], "--quit-after"),
                                                (["--device", "tpu"], "unknown device")])
def test_gui_command_refuses_bad_arguments_before_opening_a_window(arguments, expected, capsys, tmp_path,
                                                                   monkeypatch):
    from rtdenoise.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["gui", "--no-output", "--quit-after", "1", *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


def test_settings_are_locked_while_running_and_start_works_after_a_file_ends(window, qtbot, tmp_path, noisy_audio):
    import soundfile as sf

    short = tmp_path / "short.wav"
    sf.write(str(short), noisy_audio[:8000], 16000)  # 0.5 s: ends by itself
    window.set_file(short)
    assert window.start()
    assert not window.model_box.isEnabled() and not window.source_box.isEnabled()
    assert window.bypass_box.isEnabled() and window.reduction_slider.isEnabled()  # these stay live
    qtbot.waitUntil(lambda: window.start_button.text() == "Start", timeout=10000)  # the file ended
    assert window.model_box.isEnabled() and window.source_box.isEnabled()
    window.toggle()  # one press starts again (not a stop of the finished session)
    assert window.start_button.text() == "Stop" and window.controller.runner is not None
    window.stop()


def test_a_late_event_from_a_replaced_session_does_not_stop_the_new_one(window, qtbot, noisy_path):
    window.set_file(noisy_path)
    assert window.start()
    old_session = window.controller._session
    window.stop()
    assert window.start()
    window.controller._event.emit(old_session, "finished", "done")  # queued from the old worker thread
    window.controller._event.emit(old_session, "error", "old device failed")
    qtbot.wait(100)
    assert window.controller.runner is not None and window.start_button.text() == "Stop"
    assert window.banner.isHidden()
    window.stop()


def test_quiet_speech_fills_the_plot_and_the_slider_names_its_stops(window, qtbot, noisy_path):
    from rtdenoise.app.main_window import REDUCTION_STEPS_DB

    window.set_file(noisy_path)
    window.start()
    qtbot.waitUntil(lambda: _plots_filled(window), timeout=10000)
    window.controller.stop()  # no more timer refreshes: draw what was played once more, and look
    noisy, clean = window.waveforms.data()
    window.waveforms.plot(noisy, clean)
    y_low, y_high = window.waveforms.noisy_plot.viewRange()[1]
    assert window.waveforms.clean_plot.viewRange()[1] == [y_low, y_high]
    from rtdenoise.app.waveforms import envelope

    peak = max(float(np.abs(envelope(x)).max()) for x in (noisy, clean))  # what is drawn (the oldest
    assert peak < 0.5 and y_high == pytest.approx(1.15 * peak, rel=0.35)  # samples past a whole column are not)
    assert "dBFS" in window.waveforms.noisy_plot.titleLabel.text
    labels = [window.reduction_ticks.itemAt(i).widget().text() for i in range(window.reduction_ticks.count())
              if window.reduction_ticks.itemAt(i).widget() is not None]
    assert labels == [("all" if db is None else f"{db} dB") for db in REDUCTION_STEPS_DB]


def test_a_long_banner_wraps_instead_of_widening_the_window(window, qtbot):
    width = window.width()
    window.show_error("a very long error message " * 30)
    qtbot.wait(50)
    assert window.width() <= width and window.banner.isVisible()


def test_the_voice_gate_reaches_the_session(window, qtbot, noisy_path):
    window.gate_box.setChecked(True)
    window.gate_level.setValue(-50)
    window.set_file(noisy_path)
    window.start()
    qtbot.waitUntil(lambda: window.controller.runner is not None and window.controller.runner.frames_processed > 0,
                    timeout=10000)
    gate = window.controller.runner.engine.gate
    assert gate is not None and gate.settings.threshold_db == -50
    assert not window.gate_box.isEnabled()  # applies at Start: greyed while running


def test_the_app_remembers_its_settings_between_runs(qtbot, small_model_path, tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "rtdenoise.conf"), QSettings.Format.IniFormat)
    first = MainWindow([small_model_path, "cnn-lab"], small_model_path, ["cpu"], settings)
    qtbot.addWidget(first)
    first.model_box.setCurrentText("cnn-lab")
    first.output_box.setCurrentIndex(0)
    first.reduction_slider.setValue(2)
    first.gate_box.setChecked(True)
    first.gate_level.setValue(-52)
    first.virtual_mic_box.setChecked(True)
    first.show()
    first.resize(760, 707)
    qtbot.wait(50)
    size = (first.width(), first.height())
    first.close()
    again = MainWindow([small_model_path, "cnn-lab"], small_model_path, ["cpu"],
                       QSettings(str(tmp_path / "rtdenoise.conf"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.show()
    qtbot.wait(50)
    assert again.model_box.currentText() == "cnn-lab" and again.output_box.currentIndex() == 0
    assert again.reduction_slider.value() == 2 and again.max_attenuation() == first.max_attenuation()
    assert again.gate_box.isChecked() and again.gate_level.value() == -52 and again.virtual_mic_box.isChecked()
    assert (again.width(), again.height()) == size and size[1] == 707
    fresh = MainWindow([small_model_path], small_model_path, ["cpu"])  # no settings: defaults
    qtbot.addWidget(fresh)
    assert not fresh.gate_box.isChecked()


def test_the_spectrogram_view_shows_noise_removed_from_the_clean_side(window, qtbot, noisy_path, tmp_path):
    window.view_box.setCurrentText("Spectrograms")
    window.set_file(noisy_path)
    assert window.start()
    qtbot.waitUntil(lambda: getattr(window.spectrograms, "latest", None) is not None
                    and window.spectrograms.latest[0][-100:].mean() > -90, timeout=10000)
    noisy_db, clean_db = window.spectrograms.latest
    assert noisy_db.shape == clean_db.shape and noisy_db.shape[1] == 160
    assert window.views.currentWidget() is window.spectrograms
    heard = noisy_db[-100:].mean()  # the newest columns: the file is playing there
    assert -100 < heard < -20 and clean_db[-100:].mean() < heard  # in dBFS, and the clean side is quieter
    window.stop()
    window.grab().save(str(tmp_path / "spectrograms.png"))
    assert (tmp_path / "spectrograms.png").stat().st_size > 10000
    noisy_box, clean_box = (plot.getViewBox().sceneBoundingRect() for plot in window.spectrograms.plots)
    assert abs(noisy_box.width() - clean_box.width()) <= 1.0, (noisy_box.width(), clean_box.width())  # time axes align


def test_the_tray_menu_toggles_denoising_and_names_the_state(window, qtbot, noisy_path):
    window.set_file(noisy_path)
    assert window.tray_toggle.text() == "Start denoising"
    window.tray_toggle.trigger()
    assert window.controller.runner is not None and window.tray_toggle.text() == "Stop denoising"
    window.tray_toggle.trigger()
    assert window.controller.runner is None and window.tray_toggle.text() == "Start denoising"


@pytest.mark.audio_device
def test_the_virtual_speakers_switch_offers_and_removes_the_device(window, qtbot, noisy_path, pulse_daemon,
                                                                   monkeypatch):
    import sounddevice

    for key in ("PULSE_SERVER", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, pulse_daemon.env[key])
    sounddevice._terminate()   # PortAudio lists its devices once: again, now that this test's server is up
    sounddevice._initialize()
    window.set_file(noisy_path)
    window.virtual_speaker_box.setChecked(True)
    assert window.start(), window.banner.text()
    assert "rtdenoise_speakers" in pulse_daemon.pactl("list", "short", "sinks")
    assert not window.virtual_speaker_box.isEnabled()   # applies at Start, greyed while the session runs
    qtbot.waitUntil(lambda: "speakers: RTF" in window.stats_label.text(), timeout=10000)
    window.stop()
    assert "rtdenoise_speakers" not in pulse_daemon.pactl("list", "short", "sinks")
    assert window.controller.speaker_runner is None
