"""The shipped default over a minutes-long stream whose voice, noise and level change: its carried state
neither drifts nor sticks, and a mixture in the stream comes out about as well as on its own."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rtdenoise.engine import StreamingDenoiser, load_model
from training.scoring.metrics import si_sdr_db

from .conftest import DATA

CYCLES = 8  # about 3 minutes of stream


def recorded(name: str) -> np.ndarray:
    return sf.read(str(DATA / name), dtype="float32")[0]


def enhance(model, audio: np.ndarray) -> np.ndarray:
    engine = StreamingDenoiser(model, channels=1, compensate_latency=True)
    return np.concatenate([engine.process(audio[:, None]), engine.flush()])[:, 0]


def db(gain: float) -> float:
    return float(10 ** (gain / 20))


@pytest.fixture(scope="module")
def stream_run():
    """One cycle: a mixture, noise alone, an unseen voice 12 dB down, clean speech 6 dB up, the first
    mixture 12 dB down; repeated. Returns the model, the pieces (kind, noisy, clean) and the output of each."""
    model, _ = load_model(None, "cpu")
    speech, noise = recorded("speech_clean.wav"), recorded("noise_birds.wav")
    mixture = recorded("speech_noisy.wav")
    ood_noisy, ood_clean = recorded("ood_noisy.wav"), recorded("ood_clean.wav")
    cycle = [("mixture", mixture, speech), ("noise alone", noise, np.zeros_like(noise)),
             ("unseen voice -12 dB", ood_noisy * db(-12), ood_clean * db(-12)),
             ("clean speech +6 dB", speech * db(6), speech * db(6)),
             ("mixture -12 dB", mixture * db(-12), speech * db(-12))]
    pieces = cycle * CYCLES
    noisy = np.concatenate([p[1] for p in pieces])
    out = enhance(model, noisy)
    outputs, start = [], 0
    for _, piece, _ in pieces:
        outputs.append(out[start:start + len(piece)].astype(np.float64))
        start += len(piece)
    return model, pieces, outputs


def improvement(estimate: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> float:
    clean, noisy = clean.astype(np.float64), noisy.astype(np.float64)
    return si_sdr_db(estimate, clean) - si_sdr_db(noisy, clean)


def test_the_state_neither_drifts_nor_sticks_over_minutes(stream_run):
    _, pieces, outputs = stream_run
    gains = {}
    for (kind, noisy, clean), estimate in zip(pieces, outputs):
        if kind == "noise alone":
            gains.setdefault(kind, []).append(10 * np.log10(np.mean(noisy.astype(np.float64) ** 2)
                                                            / np.mean(estimate ** 2)))
        elif kind == "clean speech +6 dB":  # speech after noise: passed, not held down by the state
            gains.setdefault(kind, []).append(10 * np.log10(np.mean(estimate ** 2)
                                                            / np.mean(clean.astype(np.float64) ** 2)))
        else:
            gains.setdefault(kind, []).append(improvement(estimate, noisy, clean))
    for kind, values in gains.items():
        assert max(values) - min(values) < 1.0, (kind, np.round(values, 2))   # no drift over the cycles
        assert abs(values[-1] - values[1]) < 0.5, (kind, np.round(values, 2))
    assert min(gains["noise alone"]) > 10.0, gains["noise alone"]          # noise still removed after minutes
    assert min(gains["clean speech +6 dB"]) > -2.0, gains["clean speech +6 dB"]   # speech kept after noise
    assert min(gains["mixture"]) > 3.0 and min(gains["unseen voice -12 dB"]) > 2.0, gains


def test_a_mixture_in_the_stream_comes_out_about_as_well_as_on_its_own(stream_run):
    model, pieces, outputs = stream_run
    for kind in ("mixture", "unseen voice -12 dB", "mixture -12 dB"):
        index = [p[0] for p in pieces].index(kind, len(pieces) // 2)   # one deep in the stream
        _, noisy, clean = pieces[index]
        fresh = improvement(enhance(model, noisy).astype(np.float64), noisy, clean)
        in_stream = improvement(outputs[index], noisy, clean)
        # it keeps most of what it does on its own (the default before stream training kept 38 % of it for the
        # unseen voice after loud birdsong; the stream-trained one keeps 67-90 % in every case here)
        assert in_stream > 0.6 * fresh, (kind, round(fresh, 2), round(in_stream, 2))
