"""Shared fixtures: recorded audio, small models, a scratch folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(1)

# Tests never touch the user's home: settings (QSettings), autostart entries, caches and anything a
# subprocess writes go to a private home for this run, removed at exit.
USER_HOME = os.environ.get("HOME", "")
_PRIVATE_HOME = tempfile.TemporaryDirectory(prefix="rtdenoise-tests-home-")
for _variable, _folder in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                           ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):
    os.environ[_variable] = str(Path(_PRIVATE_HOME.name) / _folder)
    Path(os.environ[_variable]).mkdir(parents=True, exist_ok=True)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def noisy_path() -> Path:
    return DATA / "speech_noisy.wav"


@pytest.fixture(scope="session")
def clean_path() -> Path:
    return DATA / "speech_clean.wav"


@pytest.fixture(scope="session")
def noisy_audio(noisy_path) -> np.ndarray:
    return sf.read(str(noisy_path), dtype="float32")[0]


@pytest.fixture(scope="session")
def clean_audio(clean_path) -> np.ndarray:
    return sf.read(str(clean_path), dtype="float32")[0]


def make_small_model(std: float = 0.1):
    """A small GRU that is not the identity (so tests can tell input from output)."""
    from rtdenoise.models.registry import build_preset

    torch.manual_seed(0)
    model = build_preset("gru-small").eval()
    torch.nn.init.normal_(model.decode.weight, std=std)
    return model


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory) -> str:
    """That model saved as a checkpoint (fast to load; shipped models are tested separately)."""
    from rtdenoise.models import save_checkpoint

    return str(save_checkpoint(make_small_model(0.05), tmp_path_factory.mktemp("model") / "small.pt"))


@pytest.fixture(scope="module")
def fixture_split():
    """The recorded fixtures as a corpus split: one voice, birdsong."""
    from training.dataset import Clip, CorpusSplit

    speech = sf.read(str(DATA / "speech_clean.wav"), dtype="float32")[0]
    noise = sf.read(str(DATA / "noise_birds.wav"), dtype="float32")[0]
    return CorpusSplit(speech=[Clip(speech[:40000], "spk_a", "female"), Clip(speech[40000:], "spk_a", "female")],
                       noise=[Clip(noise, "birds", "ambience")])


@pytest.fixture
def fixture_corpus(tmp_path, clean_audio) -> Path:
    """A corpus folder (manifest + WAVs) from the fixtures: two training voices and one validation voice
    (valvoice), birdsong for training and the same reversed for validation."""
    import json

    noise = sf.read(str(DATA / "noise_birds.wav"), dtype="float32")[0]
    corpus = tmp_path / "corpus"
    entries = []
    for index, (kind, group, split, audio) in enumerate([
            ("speech", "voice_a", "train", clean_audio[:40000]), ("speech", "voice_b", "train", clean_audio[40000:]),
            ("speech", "voice_c", "valvoice", clean_audio[20000:60000]), ("noise", "birds", "train", noise),
            ("noise", "birds_val", "valvoice", noise[::-1].copy())]):
        path = corpus / kind / group / f"{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, 16000, subtype="FLOAT")
        entries.append({"path": str(path.relative_to(corpus)), "kind": kind, "group": group, "split": split,
                        "sex": "female", "type": "nature"})
    (corpus / "manifest.json").write_text(json.dumps({"sample_rate": 16000, "entries": entries}))
    return corpus


@pytest.fixture
def pulse_daemon(tmp_path):
    """A private PulseAudio server (tests/sound_servers.py)."""
    from tests.sound_servers import start_server

    server = start_server("pulseaudio", tmp_path / "pulse")
    yield server
    server.stop()


@pytest.fixture(params=["pulseaudio", "pipewire"])
def sound_daemon(request, tmp_path):
    """Each test on a private PulseAudio, then on a private PipeWire with pipewire-pulse."""
    from tests.sound_servers import start_server

    server = start_server(request.param, tmp_path / request.param)
    yield server
    server.stop()
