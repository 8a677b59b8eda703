"""Shared fixtures: recorded audio, small models, a scratch folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(1)

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
