"""Fullband audio: at 32 kHz and up the band above the model's Nyquist is kept and denoised."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rtdenoise.engine import StreamingDenoiser, load_model

from .conftest import DATA


def band_db(audio: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return float(10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum() + 1e-20))


def run(model, audio: np.ndarray, rate: int, block: int, offline: bool = True, **options) -> np.ndarray:
    engine = StreamingDenoiser(model, channels=1, sample_rate=rate, compensate_latency=offline,
                               coalesce=offline, chunk_samples=160, **options)
    out = [engine.process(audio[i:i + block, None]) for i in range(0, len(audio), block)]
    return np.concatenate(out + [engine.flush()])[:, 0]


@pytest.fixture(scope="module")
def gru():
    return load_model("gru", "cpu")[0]


@pytest.fixture(scope="module")
def fullband_speech() -> np.ndarray:
    return sf.read(str(DATA / "speech_fullband.flac"), dtype="float32")[0]


@pytest.mark.parametrize("rate", [8000, 16000, 22050])
def test_below_32_khz_nothing_changes(gru, noisy_audio, rate):
    from scipy.signal import resample_poly

    audio = resample_poly(noisy_audio[:32000], rate, 16000).astype(np.float32)
    assert np.array_equal(run(gru, audio, rate, 1000), run(gru, audio, rate, 1000, keep_high_band=False))


def test_48k_speech_keeps_its_high_band_and_its_low_band_is_unchanged(gru, fullband_speech):
    out = run(gru, fullband_speech, 48000, 4800)
    old = run(gru, fullband_speech, 48000, 4800, keep_high_band=False)
    assert len(out) == len(fullband_speech)
    kept = band_db(out, 48000, 8000, 20000) - band_db(fullband_speech, 48000, 8000, 20000)
    top_octave = band_db(out, 48000, 4000, 7500) - band_db(fullband_speech, 48000, 4000, 7500)
    assert kept > -10 and abs(kept - top_octave) < 2.0, (kept, top_octave)  # the high band follows the model's
    # own top octave (the shipped GRU takes 5-6 dB off 4-8 kHz of clean speech: a model matter, see the notes)
    assert band_db(old, 48000, 8000, 20000) - band_db(fullband_speech, 48000, 8000, 20000) < -40  # was deleted
    for low, high in ((100, 2000), (2000, 7000)):
        assert abs(band_db(out, 48000, low, high) - band_db(old, 48000, low, high)) < 0.2


def test_48k_noise_alone_loses_15_db_in_the_high_band(gru):
    noise = (np.random.default_rng(0).standard_normal(48000 * 3) * 0.05).astype(np.float32)
    out = run(gru, noise, 48000, 4800)
    assert band_db(out[48000:], 48000, 8000, 20000) - band_db(noise[48000:], 48000, 8000, 20000) <= -15


@pytest.mark.parametrize("rate", [32000, 44100, 48000])
def test_streaming_equals_offline_at_high_rates_for_any_block_size(gru, fullband_speech, rate):
    from scipy.signal import resample_poly

    audio = resample_poly(fullband_speech[:48000 * 2], rate, 48000).astype(np.float32)
    for offline in (True, False):
        reference = run(gru, audio, rate, len(audio), offline)
        for block in (1, 7, 480, 4801):
            if block == 1 and rate != 48000:
                continue  # one-sample blocks are slow; 48 kHz covers them
            assert np.abs(run(gru, audio, rate, block, offline) - reference).max() < 1e-5, (rate, block, offline)


def test_live_48k_output_is_the_offline_output_delayed_by_the_latency(gru, fullband_speech):
    offline = run(gru, fullband_speech, 48000, 480)
    live = run(gru, fullband_speech, 48000, 480, offline=False)
    delay = gru.latency_samples * 3
    assert np.abs(live[delay:len(offline)] - offline[: len(offline) - delay]).max() < 1e-4


def test_high_band_gain_is_reached_half_way_into_each_hop_and_keeps_more_than_the_top_octave():
    from rtdenoise.engine.high_band import HighBand

    band = HighBand(48000, 16000, channels=1, hop=160, delay=0)
    dry = np.random.default_rng(1).standard_normal((1, 480)).astype(np.float32)
    gains = band.gains(0.25 * dry, dry)[0]  # the model took 12 dB off its top octave
    expected = 0.25 ** 0.8                   # the high band loses 9.6 dB of it
    assert not gains[:320].any()             # the stream's first two hops: shut while the model's output fills in
    assert gains[320] == pytest.approx(expected / 80, rel=1e-4)  # then ramped from silence ...
    np.testing.assert_allclose(gains[399:], expected, rtol=1e-5)  # ... reached half way in, then held
    assert np.all(np.diff(gains[320:400]) > 0)
    later = band.gains(dry, dry)[0]                 # the next step: the model took nothing off
    assert later[0] == pytest.approx(expected + (1 - expected) / 80, rel=1e-4)  # ramped from the last hop's gain
    np.testing.assert_allclose(later[79:], 1.0, rtol=1e-5)


def test_the_high_band_does_not_click_at_the_start_of_a_fullband_stream():
    """Nothing passes above 8 kHz before the model's first gain: the first 10 ms stay as quiet as at 16 kHz."""
    from scipy.signal import resample_poly

    audio = sf.read(str(DATA / "speech_fullband.flac"), dtype="float32")[0]
    noisy = audio + np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * 0.01
    model, _ = load_model(None, "cpu")
    peaks = {}
    for rate, signal in ((48000, noisy), (16000, resample_poly(noisy, 1, 3).astype(np.float32))):
        engine = StreamingDenoiser(model, channels=1, sample_rate=rate, compensate_latency=True)
        out = np.concatenate([engine.process(signal[:, None]), engine.flush()])[:, 0]
        peaks[rate] = 20 * np.log10(np.abs(out[: rate // 100]).max() + 1e-12)
    assert peaks[48000] < -60 and peaks[48000] < peaks[16000] + 15, peaks  # it was -35 dBFS (16 kHz: -82)


def test_a_model_carries_its_own_high_band_exponent_and_average_sets_it(tmp_path):
    from rtdenoise.engine.high_band import GAIN_EXPONENT
    from rtdenoise.models import save_checkpoint
    from rtdenoise.models.registry import build_preset
    from training import average

    model = build_preset("bands-small")
    assert model.high_band_exponent == GAIN_EXPONENT == 0.8
    path = save_checkpoint(model, tmp_path / "m.pt")
    assert average.main(["--high-band-exponent", "0.3", "--out", str(tmp_path / "m03.pt"), str(path)]) == 0
    changed, _ = load_model(str(tmp_path / "m03.pt"), "cpu")
    engine = StreamingDenoiser(changed, channels=1, sample_rate=48000)
    assert engine.high_band.exponent == 0.3
    dry = np.random.default_rng(2).standard_normal((1, 480)).astype(np.float32)
    gains = engine.high_band.gains(0.25 * dry, dry)[0]
    np.testing.assert_allclose(gains[399:], 0.25 ** 0.3, rtol=1e-5)  # more of the high band kept than at 0.8
    with pytest.raises(SystemExit):
        average.main(["--high-band-exponent", "1.5", "--out", str(tmp_path / "bad.pt"), str(path)])
    assert not (tmp_path / "bad.pt").exists()
