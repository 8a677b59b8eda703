"""A new user's first hour: the messages, start-up lines and pictures they meet first."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtdenoise.live import runner as realtime
from rtdenoise.cli import main


def test_list_devices_without_portaudio_is_one_line_and_exit_2(monkeypatch, capsys):
    def missing():
        raise realtime.DeviceError("no audio devices: PortAudio is missing (library not found); "
                                   "apt-get install libportaudio2")

    monkeypatch.setattr(realtime, "import_sounddevice", missing)
    assert main(["live", "--list-devices"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].count("no audio devices") == 1 and "libportaudio2" in lines[0]
    assert captured.out == ""


@pytest.mark.parametrize("kind,flag", [("output", "--no-output"), ("input", "--file")])
def test_a_missing_default_device_says_what_to_do(kind, flag):
    message = realtime.device_failure(kind, None, "Error querying device -1")
    assert message.startswith(f"no {kind} device found;") and flag in message and "--list-devices" in message
    named = realtime.device_failure(kind, 5, "Invalid sample rate")
    assert named.startswith(f"{kind} device 5 failed to open (Invalid sample rate)")


def test_the_training_start_line_says_what_will_run_and_one_epoch_is_drawn(tmp_path, fixture_split, capsys):
    import json

    import matplotlib.image as mpimg

    from training import train
    from training.dataset import Mixer, MixConfig, build_pairs, save_pairs

    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5))), 9, seed=3)
    data = save_pairs(pairs, tmp_path / "train.pt")
    out = tmp_path / "tiny.pt"
    assert train.main(["--model", "gru-small", "--data", str(data), "--out", str(out), "--epochs", "1",
                       "--batch", "4", "--loss", "l1", "--quiet"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("training gru-small"))
    plan = json.loads(line.split(": ", 1)[1])
    assert plan["held_out"] == 1 and plan["training_pairs"] == 8 and plan["steps_per_epoch"] == 2
    picture = mpimg.imread(tmp_path / "tiny_plots" / "loss_curve.png")
    drawn = (picture[..., :3] < 0.9).any(axis=-1)  # non-white pixels
    blue = (picture[..., 2] > 0.5) & (picture[..., 0] < 0.3)  # the train loss's marker (matplotlib's C0)
    assert drawn.mean() > 0.01 and blue.sum() > 20


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Python API block, run from the repository root in a scratch folder's name space."""
    import re
    import shutil

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    block = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "rtdenoise" / "samples").mkdir(parents=True)
    shutil.copy(root / "rtdenoise" / "samples" / "noisy_speech.wav", tmp_path / "rtdenoise" / "samples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    import soundfile as sf

    assert sf.info("cleaned.wav").frames == sf.info("rtdenoise/samples/noisy_speech.wav").frames
    assert namespace["out"].shape == (480, 1) or len(namespace["out"]) <= 480


def test_models_lists_whole_notes(capsys):
    """Every word of every shipped model's note is printed (wrapped, not cut), and nothing cites our own folders."""
    from rtdenoise.models import list_pretrained
    from rtdenoise.models.registry import read_checkpoint, resolve_model_path

    assert main(["models"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    for name in list_pretrained():
        note = read_checkpoint(resolve_model_path(name)).get("notes", "")
        assert " ".join(note.split()) in printed, name
        assert "SEEDS" not in note
    assert "SEEDS" not in printed and "kHz" in printed


def test_ci_runs_the_readmes_two_commands_as_written():
    root = Path(__file__).resolve().parents[1]
    readme = [line for line in (root / "README.md").read_text().splitlines()
              if line.startswith("python3 -m venv .venv && .venv/bin/pip install -c tests/constraints.txt")]
    ci = (root / ".ci" / "run").read_text().replace("\\\n    ", "").replace("-q --disable-pip-version-check ", "")
    assert len(readme) == 2 and all(command in ci for command in readme), readme
    pins = (root / "tests" / "constraints.txt").read_text()
    assert "torch==" in pins and "PySide6-Essentials==6.11.3" in pins
    project = (root / "pyproject.toml").read_text()
    assert "torch==" not in project and "PySide6-Essentials==" not in project and "ray==" not in project


def test_the_app_names_the_missing_x11_libraries_in_one_line(monkeypatch, capsys):
    import ctypes.util

    from rtdenoise.app import main as app_main

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name != "xcb-icccm" else "libxcb-icccm.so.4")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert app_main.missing_x11_packages() == ["libxcb-cursor0", "libxcb-keysyms1"]
    assert main(["gui", "--quit-after", "1"]) == 2
    assert capsys.readouterr().err.strip() == ("rtdenoise: error: the desktop app needs libxcb-cursor0, libxcb-keysyms1 "
                                               "to open a window on X11: sudo apt-get install libxcb-cursor0 "
                                               "libxcb-keysyms1")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")   # no X11: nothing is needed
    assert app_main.missing_x11_packages() == []
