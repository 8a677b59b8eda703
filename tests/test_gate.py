"""The voice gate on recorded speech with pauses: silence between words, every word whole."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rtdenoise.engine import StreamingDenoiser, load_model
from rtdenoise.engine.gate import GateSettings, VoiceGate

from .conftest import DATA


def words_and_pauses(clean: np.ndarray, rate: int = 16000) -> tuple[list, list]:
    """(word, pause) sample ranges of the clean speech: 10 ms frames within 40 dB of the loudest are voice."""
    frame = rate // 100
    level = 10 * np.log10(np.mean(clean[: len(clean) // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    voiced = level > level.max() - 40
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(int), [0]])))
    words = [(a * frame, b * frame) for a, b in zip(edges[::2], edges[1::2]) if b - a >= 5]
    pauses = [(b, a) for (_, b), (a, _) in zip(words, words[1:]) if a - b >= int(0.6 * rate)]
    return words, pauses


def energy_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(np.square(x, dtype=np.float64)) + 1e-20))


@pytest.fixture(scope="module")
def speech_with_pauses() -> tuple[np.ndarray, np.ndarray]:
    """The recorded prompts with 0.8 s pauses cut in at their quiet moments, over recorded birdsong 35 dB down."""
    clean = sf.read(str(DATA / "speech_clean.wav"), dtype="float32")[0]
    birds = sf.read(str(DATA / "noise_birds.wav"), dtype="float32")[0]
    frame = 160
    level = np.sqrt(np.mean(clean[: len(clean) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    quiet = []
    for index in np.flatnonzero(level < level.max() * 0.01):  # quiet moments between words, 0.5 s apart
        if 20 <= index < len(level) - 20 and (not quiet or index * frame - quiet[-1] >= 8000):
            quiet.append(int(index) * frame)
    pieces, start = [], 0
    for cut in quiet:
        pieces += [clean[start:cut], np.zeros(int(0.8 * 16000), np.float32)]
        start = cut
    clean = np.concatenate(pieces + [clean[start:]])
    noise = np.resize(birds, len(clean))
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2)) * 10 ** (-35 / 20)
    return clean, (clean + noise).astype(np.float32)


def test_the_gate_silences_pauses_and_keeps_every_word_whole(speech_with_pauses):
    clean, noisy = speech_with_pauses
    model, _ = load_model("gru", "cpu")

    def run(gate_db):
        engine = StreamingDenoiser(model, compensate_latency=True, coalesce=True, gate_db=gate_db)
        return np.concatenate([engine.process(noisy[i:i + 1000, None]) for i in range(0, len(noisy), 1000)]
                              + [engine.flush()])[:, 0]

    plain, gated = run(None), run(-45.0)
    assert len(gated) == len(noisy)
    words, pauses = words_and_pauses(clean)
    assert len(pauses) >= 2 and len(words) >= 4
    hold = GateSettings().hold_ms / 1000 + GateSettings().release_ms / 1000
    for a, b in pauses:  # the middle of each pause: after the hold and release, before the look-back
        inside = slice(a + int(hold * 16000), b - int(0.1 * 16000))
        assert energy_db(gated[inside]) - energy_db(plain[inside]) <= -30
    for a, b in words:
        assert abs(energy_db(gated[a:b]) - energy_db(plain[a:b])) < 0.5
        onset = slice(a, a + 800)  # the first 50 ms of the word
        assert abs(energy_db(gated[onset]) - energy_db(plain[onset])) < 0.5


def test_the_gate_streams_as_it_runs_offline_and_refuses_nonsense():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((1, 16000)) * np.repeat(rng.random(20) > 0.5, 800) * 0.1).astype(np.float32)
    whole = VoiceGate(16000, 1).process(audio)
    for block in (1, 7, 333):
        gate = VoiceGate(16000, 1)
        parts = np.concatenate([gate.process(audio[:, i:i + block]) for i in range(0, audio.shape[1], block)], axis=1)
        assert np.array_equal(parts, whole)
    with pytest.raises(ValueError, match="--gate"):
        VoiceGate(16000, 1, GateSettings(threshold_db=6.0))
