"""The fullband test set (real bandwidth checked by spectrum) and its scores in training.evaluate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from training import evaluate, fullband_set
from training.scoring.fullband_metrics import band_level_db

from .conftest import DATA


def fake_cache(tmp_path, speech: np.ndarray, rate: int):
    """Unpacked 'packages' laid out as the real ones: 24 speech clips and three noise recordings."""
    voice = tmp_path / "gcin-voice/usr/share/gcin-voice/ogg"
    for index in range(24):
        folder = voice / f"syllable{index}"
        folder.mkdir(parents=True)
        start = index * rate // 6
        offset = 0.05 if index % 2 else 0.0  # half the syllables carry a DC offset, as some of gcin-voice's do
        sf.write(str(folder / "3.ogg"), speech[start: start + int(0.6 * rate)] + offset, rate)
    sounds = tmp_path / "lincity-ng-data/usr/share/games/lincity-ng/sounds"
    sounds.mkdir(parents=True)
    rng = np.random.default_rng(0)
    white = rng.standard_normal(2 * 44100).astype(np.float32) * 0.1
    sf.write(str(sounds / "PowerLine1.wav"), white, 44100)
    from scipy.signal import butter, sosfilt

    dull = sosfilt(butter(10, 4000, fs=44100, output="sos"), white)  # a 44.1 kHz header, nothing above 8 kHz
    sf.write(str(sounds / "PowerDull.wav"), dull, 44100)
    return tmp_path


@pytest.fixture(scope="module")
def fullband_speech():
    audio, rate = sf.read(str(DATA / "speech_fullband.flac"), dtype="float32")
    return audio, rate


def test_the_fullband_set_keeps_only_sources_with_real_high_band_content(tmp_path, fullband_speech):
    speech, rate = fullband_speech
    cache = fake_cache(tmp_path, speech, rate)
    dull, dull_rate = sf.read(str(cache / "lincity-ng-data/usr/share/games/lincity-ng/sounds/PowerDull.wav"))
    assert fullband_set.read_fullband(cache / "lincity-ng-data/usr/share/games/lincity-ng/sounds/PowerDull.wav") \
        is None and dull_rate == 44100  # refused by its spectrum, not its header
    pairs, metas = fullband_set.build(cache, clips=6, seconds=1.0)
    spectra = [np.abs(np.fft.rfft(clean.numpy()[0])) ** 2 for _, clean in pairs]  # 1 s at 48 kHz: 1 Hz a bin
    assert np.mean([spectrum[:20].sum() / spectrum.sum() for spectrum in spectra]) < 0.005  # no DC, no rumble
    assert {m["noise"] for m in metas} == {"lincity_power", "synthetic_white", "synthetic_pink"}
    for (noisy, clean), meta in zip(pairs, metas):
        assert meta["sample_rate"] == 48000 and noisy.shape == clean.shape == (1, 48000)
        noise = (noisy - clean).numpy()[0]
        snr = 10 * np.log10(np.sum(clean.numpy() ** 2) / np.sum(noise ** 2))
        assert abs(snr - meta["snr_db"]) < 0.1
        assert band_level_db(clean.numpy()[0], 48000) - band_level_db(clean.numpy()[0], 48000, (0, 8000)) > -45
    pairs, metas = fullband_set.build(cache, clips=2, seconds=1.0, rate=44100)  # the same mixtures at 44.1 kHz
    assert pairs[0][0].shape == (1, 44100) and metas[0]["sample_rate"] == 44100


def test_evaluate_scores_a_48k_set_fullband_and_the_default_model_keeps_speech_and_removes_noise(
        tmp_path, fullband_speech, capsys):
    speech, rate = fullband_speech
    assert rate == 48000
    rng = np.random.default_rng(1)
    clean = speech[: 4 * rate] / np.max(np.abs(speech)) * 0.3
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2)) * 10 ** (-5 / 20)
    import torch

    from training.dataset import save_pairs

    data = save_pairs([(torch.from_numpy(clean + noise)[None], torch.from_numpy(clean)[None])],
                      tmp_path / "fb.pt", [{"snr_db": 5.0, "noise": "white", "sample_rate": 48000}])
    out = tmp_path / "fb.json"
    assert evaluate.main(["--data", str(data), "--model", "bands", "--no-baselines", "--json", str(out),
                          "--plot", str(tmp_path / "spectra.png")]) == 0
    printed = capsys.readouterr().out
    assert "fullband at 48000 Hz" in printed and "HB keep" in printed
    scores = json.loads(out.read_text())["bands"]["overall"]
    assert abs(scores["retention"]) <= 2.0           # clean speech keeps its 8-20 kHz level within 2 dB
    assert scores["noise_removal"] >= 15.0          # noise alone loses at least 15 dB there
    assert scores["hb_sdr_i"] > 3.0 and scores["si_sdr_i"] > 3.0
    assert scores["stoi"] >= scores["stoi16"] - 0.01   # the 48 kHz path is no worse than the 16 kHz one
    assert (tmp_path / "spectra.png").stat().st_size > 10_000
