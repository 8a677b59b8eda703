"""Streams whose conditions change: the stream mixer, stream validation, training on streams."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training import train

from training.fitting import validation
from training.dataset import SAMPLE_RATE, MixConfig, Mixer
from training.mixing.stream_mix import StreamConfig, StreamMixer, fade_in_noise, join, level_step


def test_a_stream_is_pieces_of_changing_mixtures_laid_end_to_end(fixture_split):
    mixer = Mixer(fixture_split, MixConfig(seconds=6.0))
    streams = StreamMixer(mixer, StreamConfig(seconds=20.0, pause_probability=0.3))
    noisy, clean, meta = streams.mix(np.random.default_rng(3))
    spans = meta["spans"]
    assert len(noisy) == len(clean) == 20 * SAMPLE_RATE and spans[0][0] == 0 and spans[-1][1] == len(noisy)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(1.5 * SAMPLE_RATE <= end - start <= 6 * SAMPLE_RATE for start, end in spans[:-1])
    levels = [10 * np.log10(np.mean(noisy[s:e] ** 2) + 1e-12) for s, e in spans]
    assert max(levels) - min(levels) > 3  # the level changes from piece to piece
    for (start, end), kind in zip(spans, meta["pieces"]):
        if kind == "noise only":
            assert not clean[start:end].any() and noisy[start:end].any()
    assert np.abs(noisy).max() <= 0.99 + 1e-6


def test_the_noise_can_go_on_under_the_next_speaker_without_a_jump(fixture_split):
    mixer = Mixer(fixture_split, MixConfig(seconds=6.0))
    config = StreamConfig(seconds=20.0, pause_probability=0.3, fade_probability=0.0, level_step_probability=0.0,
                          same_noise_probability=1.0)
    noisy, clean, meta = StreamMixer(mixer, config).mix(np.random.default_rng(4))
    noise, spans, kinds = noisy - clean, meta["spans"], meta["pieces"]
    assert kinds[0] in ("mixture", "noise only") and set(kinds[1:]) <= {"same noise", "same noise only"}
    assert "same noise only" in kinds and "same noise" in kinds   # turns with speech, and pauses
    for (start, end), (_, next_end), kind in zip(spans, spans[1:], kinds[1:]):
        before, after = noise[start:end], noise[end:next_end]
        scale = after[0] / before[-1]   # the same noise, only limited below 0.99 peak if it had to be
        assert 0.5 < scale <= 1.0 + 1e-5
        n = min(len(before), len(after))
        np.testing.assert_allclose(after[:n], before[::-1][:n] * scale, rtol=1e-4, atol=1e-6)
        if kind == "same noise only":
            assert not clean[end:next_end].any()
    assert StreamMixer(mixer, StreamConfig(seconds=20.0)).mix(np.random.default_rng(4))[2]["pieces"][1:] != kinds[1:]


def test_streams_without_the_same_noise_are_drawn_as_before(fixture_split):
    """At probability 0 the option draws nothing: earlier runs' streams (and validation) stay the same."""
    mixer = Mixer(fixture_split, MixConfig(seconds=6.0))
    streams = StreamMixer(mixer, StreamConfig(seconds=12.0))
    rng, again = np.random.default_rng(5), np.random.default_rng(5)
    pieces = []
    while sum(len(p[0]) for p in pieces) < streams.length:   # the pieces drawn one by one, as before the option
        samples = min(int(again.integers(int(1.5 * SAMPLE_RATE), 6 * SAMPLE_RATE + 1)),
                      streams.length - sum(len(p[0]) for p in pieces))
        pieces.append(streams.piece(again, samples))
    noisy, clean, _ = streams.mix(rng)
    np.testing.assert_array_equal(noisy, np.concatenate([p[0] for p in pieces]))


def test_fade_in_and_level_step_keep_speech_and_noise_in_line():
    rng = np.random.default_rng(0)
    clean, noise = rng.standard_normal(16000).astype(np.float32) * 0.1, rng.standard_normal(16000).astype(np.float32) * 0.1
    faded = fade_in_noise(clean + noise, clean, 8000)
    np.testing.assert_allclose(faded[:1], clean[:1], atol=1e-6)   # no noise at the start
    np.testing.assert_allclose(faded[8000:], (clean + noise)[8000:], atol=1e-6)
    stepped_noisy, stepped_clean = level_step(clean + noise, clean, 4000, 12.0)
    np.testing.assert_allclose(stepped_noisy - stepped_clean, (noise * (stepped_clean / clean)), rtol=1e-4, atol=1e-6)
    assert np.abs(stepped_noisy).max() <= 0.99 + 1e-6  # +12 dB would clip: the step is limited
    assert np.allclose(stepped_clean[:4000], clean[:4000])
    noisy, _, spans = join([(clean[:100], clean[:100]), (noise[:50], clean[:50])])
    assert spans == [(0, 100), (100, 150)] and len(noisy) == 150


def test_continuous_mixtures_hold_one_speakers_speech_without_pauses_and_without_clicks(fixture_split):
    from training.mixing.pauses import FRAME, crossfaded

    plain = Mixer(fixture_split, MixConfig(seconds=6.0, pitch_shift_probability=0.0))
    continuous = Mixer(fixture_split, MixConfig(seconds=6.0, pitch_shift_probability=0.0, continuous_probability=1.0))
    for seed in range(4):
        speech, _ = continuous.speech(np.random.default_rng(seed))
        assert len(speech) == continuous.length and speech.dtype == np.float32
        frames = speech.reshape(-1, FRAME)
        energy = np.mean(np.square(frames, dtype=np.float64), axis=1)
        assert energy.min() > energy.max() * 10 ** (-6.5), "a pause was left in"   # 40 dB cut, 25 dB of headroom
        ordinary, _ = plain.speech(np.random.default_rng(seed))
        quiet = np.mean(np.square(ordinary.reshape(-1, FRAME), dtype=np.float64), axis=1)
        assert (quiet < quiet.max() * 1e-4).sum() > 10   # the ordinary mixture has its pauses
    # the joins are faded: no step larger than the parts themselves hold
    a, b = np.ones(400, np.float32), -np.ones(400, np.float32)
    joined = crossfaded([a, b], 80)
    assert len(joined) == 720 and np.abs(np.diff(joined)).max() < 0.03
    np.testing.assert_array_equal(crossfaded([a, b], 0), np.concatenate([a, b]))


def test_validation_scores_each_piece_of_a_stream_and_selection_takes_the_worse_figure():
    from rtdenoise.models.registry import build_preset

    model = build_preset("bands-small").eval()
    rng = np.random.default_rng(1)
    clean = np.sin(np.arange(32000) * 0.05).astype(np.float32) * 0.1
    noisy = clean + rng.standard_normal(32000).astype(np.float32) * 0.02
    stream = (torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None], [(0, 16000), (16000, 32000)])
    fresh = (stream[0][:, :16000], stream[1][:, :16000])
    pieces = list(validation.piece_estimates(model, stream, torch.device("cpu")))
    assert len(pieces) == 2 and all(p[0].shape == p[1].shape == p[2].shape for p in pieces)
    metrics = validation.validate(model, [fresh, stream], train.TrainConfig(loss="speech"), torch.device("cpu"))
    assert {"si_sdr_improvement", "stream_si_sdr_improvement"} <= set(metrics)
    config = train.TrainConfig(loss="speech")
    both = {"loss": 1.0, "si_sdr_improvement": 5.0, "stream_loss": 2.0, "stream_si_sdr_improvement": 2.0}
    assert validation.selection_score(both, "si_sdr", config, False) == 2.0
    assert validation.selection_score(both, "loss", config, False) == -2.0
    assert validation.selection_score({"loss": 1.0, "si_sdr_improvement": 5.0}, "si_sdr", config, False) == 5.0


def test_a_band_model_trains_on_streams_and_validates_both_ways(tmp_path, fixture_corpus):
    corpus = fixture_corpus
    out = tmp_path / "bands.pt"
    assert train.main(["--model", "bands-small", "--corpus", str(corpus), "--augment", "--rooms", "4",
                       "--loss", "speech", "--val-split", "valvoice", "--stream-seconds", "8",
                       "--batch", "2", "--segment-seconds", "1", "--steps-per-epoch", "2", "--epochs", "2",
                       "--out", str(out), "--quiet"]) == 0
    saved = torch.load(out.with_name("bands.last.pt"), weights_only=True)
    assert saved["training"]["recipe"]["stream_seconds"] == 8.0
    assert all("val_stream_si_sdr_improvement" in h for h in saved["history"])


def test_evaluate_scores_each_mixture_in_the_stream_and_in_the_hard_streams(tmp_path, fixture_split, capsys):
    from training import evaluate
    from training.dataset import save_pairs
    from training.scoring.stream_eval import HARD_KINDS

    mixer = Mixer(fixture_split, MixConfig(seconds=2.0, pitch_shift_probability=0, silence_probability=0,
                                           synthetic_probability=0, synthetic_only_probability=0,
                                           babble_probability=0))
    rng = np.random.default_rng(2)
    mixes = [mixer.mix(rng, snr) for snr in (0.0, 5.0, 10.0, 0.0, 5.0, 10.0, 0.0)]
    path = save_pairs([(torch.from_numpy(n)[None], torch.from_numpy(c)[None]) for n, c, _ in mixes],
                      tmp_path / "test.pt", [meta for _, _, meta in mixes])
    assert evaluate.main(["--data", str(path), "--model", "bands", "--no-baselines", "--stream",
                          "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "fresh clips and streams" in printed and "noise removed during the long pauses" in printed
    assert "STOI above the noisy input in every SNR band" in printed and "  bands: " in printed
    results = json.loads((tmp_path / "r.json").read_text())
    for name in ("noisy input", "bands"):
        assert {f"{name} (stream)"} | {f"{name} ({kind})" for kind in HARD_KINDS} <= set(results)
    fresh, stream = results["noisy input"], results["noisy input (stream)"]
    # the noisy input cut from the stream is each mixture itself: the spans line up exactly
    assert stream["overall"]["clips"] == 7
    for metric in ("pesq", "stoi", "si_sdr"):
        assert stream["overall"][metric] == pytest.approx(fresh["overall"][metric], abs=1e-9)
    assert results["bands (stream)"]["overall"]["si_sdr_i"] != pytest.approx(results["bands"]["overall"]["si_sdr_i"])
    assert results["bands (stream)"]["overall"]["si_sdr_i"] > 1.0
    assert results["bands (after pause)"]["overall"]["pause_noise_removed_db"] > 6.0
    assert results["noisy input (after pause)"]["overall"]["pause_noise_removed_db"] == pytest.approx(0.0, abs=1e-6)


def test_the_no_pauses_stream_reads_the_same_speaker_without_pauses_over_the_mixtures_own_noise(fixture_split):
    from training.mixing.pauses import FRAME, active_rms, without_pauses
    from training.scoring.stream_eval import hard_pieces

    mixer = Mixer(fixture_split, MixConfig(seconds=3.0, pitch_shift_probability=0, silence_probability=0,
                                           synthetic_probability=0, synthetic_only_probability=0,
                                           babble_probability=0))
    rng = np.random.default_rng(5)
    mixes = [mixer.mix(rng, 5.0) for _ in range(8)]
    arrays = [(n, c) for n, c, _ in mixes]
    metas = [dict(meta) for _, _, meta in mixes]
    metas[6]["speaker"] = "someone else"        # the mixture just before is another speaker's: skipped
    pieces = hard_pieces("no pauses", arrays, [7], np.random.default_rng(0), list(range(8)), metas)
    (context_noisy, context_clean, unscored, _), (noisy, clean, scored, relabel) = pieces
    assert unscored is None and scored == 7 and relabel is None
    assert noisy is arrays[7][0] and clean is arrays[7][1]            # the scored mixture itself, untouched
    assert 8.0 * SAMPLE_RATE <= len(context_clean) <= 12.0 * SAMPLE_RATE
    frames = context_clean[: len(context_clean) // FRAME * FRAME].reshape(-1, FRAME)
    energy = np.mean(frames.astype(np.float64) ** 2, axis=1)
    assert energy.min() > energy.max() * 1e-5                        # no 20 ms without speech in the context
    # it reads the nearest mixture of the same speaker first (5, not 6), pauses cut, at the scored level
    nearest = without_pauses(arrays[5][1]) * (active_rms(arrays[7][1]) / active_rms(arrays[5][1]))
    assert len(nearest) < len(arrays[5][1])                           # the fixture's mixture had pauses to cut
    np.testing.assert_allclose(context_clean[: len(nearest)], nearest, atol=1e-6)
    assert active_rms(context_clean) == pytest.approx(active_rms(arrays[7][1]), rel=0.05)
    # under it runs the scored mixture's own noise, which ends where the mixture's noise begins
    context_noise = context_noisy - context_clean
    own_noise = arrays[7][0] - arrays[7][1]
    assert np.abs(context_noise).max() == pytest.approx(np.abs(own_noise).max(), rel=1e-5)
    assert context_noise[-1] == pytest.approx(own_noise[0], abs=1e-6)


def test_the_new_speaker_is_grouped_by_the_noise_it_is_heard_over_and_the_snr_heard():
    """Its speech is laid over the mixture before's noise: that noise's type and the SNR heard are its groups
    (its own mixture's were before: a cell named for wind held speech over whatever noise came before)."""
    from training.scoring.stream_eval import hard_pieces, score_stream

    rng = np.random.default_rng(3)
    speech = [rng.standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1 for _ in range(2)]
    noises = [rng.standard_normal(SAMPLE_RATE).astype(np.float32) * scale for scale in (0.1, 0.01)]
    arrays = [(s + n, s) for s, n in zip(speech, noises)]
    metas = [{"speaker": "a", "sex": "female", "noise": "loud hum", "noise_type": "machines", "snr_db": 0.0},
             {"speaker": "b", "sex": "male", "noise": "soft rain", "noise_type": "wind_rain_water", "snr_db": 20.0}]
    pieces = hard_pieces("new speaker", arrays, [0, 1], np.random.default_rng(0), [0, 1], metas)
    rows, _ = score_stream(lambda noisy: noisy, pieces, metas)
    assert [(r["noise"], r["snr"], r["speaker"]) for r in rows] == [("wind_rain_water", "+20 dB", "a"),
                                                                      ("machines", "+0 dB", "b")]


def test_the_dropouts_stream_silences_the_microphone_three_times_per_mixture_in_the_reference_too():
    from training.scoring.stream_eval import DROPOUT_MS, DROPOUTS, hard_pieces

    rng = np.random.default_rng(4)
    speech = [rng.standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1 for _ in range(3)]
    arrays = [(s + 0.05 * rng.standard_normal(len(s)).astype(np.float32), s) for s in speech]
    pieces = hard_pieces("dropouts", arrays, [0, 1, 2], np.random.default_rng(0))
    assert [p.index for p in pieces] == [0, 1, 2]
    for piece, (noisy, clean) in zip(pieces, arrays):
        gone = piece.noisy == 0.0
        assert np.array_equal(gone, piece.clean == 0.0) and len(piece.noisy) == len(noisy)
        assert np.array_equal(piece.noisy[~gone], noisy[~gone]) and np.array_equal(piece.clean[~gone], clean[~gone])
        runs = np.flatnonzero(np.diff(np.concatenate([[0], gone.astype(int), [0]])))
        lengths = (runs[1::2] - runs[::2]) * 1000 / SAMPLE_RATE
        assert 1 <= len(lengths) <= DROPOUTS  # (two may overlap)
        assert lengths.sum() >= DROPOUT_MS[0] and all(length <= DROPOUTS * DROPOUT_MS[1] for length in lengths)
