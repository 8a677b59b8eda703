"""The training pipeline on the recorded fixtures: data, losses, a short run whose loss falls."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from rtdenoise.models import load_checkpoint
from training import train
from training.fitting import train_steps
from training.fitting import validation
from training.dataset import MixConfig, Mixer, build_pairs, load_pairs, random_split, save_pairs
from training.fitting.losses import masked_l1, si_sdr
from training.mixing.synthetic_noise import KINDS, make

from .conftest import DATA


def test_mixer_hits_the_asked_snr(fixture_split):
    mixer = Mixer(fixture_split, MixConfig(seconds=1.0, pitch_shift_probability=0, silence_probability=0,
                                           synthetic_probability=0, synthetic_only_probability=0,
                                           babble_probability=0))
    rng = np.random.default_rng(0)
    for snr in (-5.0, 0.0, 10.0):
        noisy, clean, meta = mixer.mix(rng, snr)
        measured = 10 * np.log10(np.sum(clean ** 2) / np.sum((noisy - clean) ** 2))
        assert measured == pytest.approx(snr, abs=0.05)
        assert meta["snr_db"] == snr and noisy.shape == (16000,)


def test_synthetic_noises_are_unit_rms():
    rng = np.random.default_rng(0)
    for kind in KINDS:
        noise = make(kind, 8000, rng)
        assert noise.shape == (8000,) and np.sqrt(np.mean(noise ** 2)) == pytest.approx(1.0, rel=1e-3)


def test_lab_format_round_trip_and_foreign_files(tmp_path, fixture_split):
    pairs, metas = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5)), 6, seed=1)
    path = save_pairs(pairs, tmp_path / "pairs.pt", metas)
    loaded, loaded_metas = load_pairs(path)
    assert len(loaded) == 6 and loaded[0][0].shape == (1, 8000) and loaded_metas == metas
    # A file made elsewhere: 1-D tensors in tuples, no metadata.
    torch.save([(torch.randn(800), torch.randn(800)) for _ in range(3)], tmp_path / "lab.pt")
    foreign, none = load_pairs(tmp_path / "lab.pt")
    assert foreign[0][1].shape == (1, 800) and none is None
    torch.save([(torch.randn(800), torch.randn(700))], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="item 0"):
        load_pairs(tmp_path / "bad.pt")
    train_part, test_part = random_split(loaded, 2, seed=0)
    assert len(train_part) == 4 and len(test_part) == 2


def test_paired_clean_noisy_folders_become_lab_pairs(tmp_path, clean_audio, noisy_audio):
    from training.dataset import main as dataset_main

    root = tmp_path / "voicebank"
    for split in ("trainset_28spk_wav", "testset_wav"):
        (root / f"clean_{split}").mkdir(parents=True)
        (root / f"noisy_{split}").mkdir()
        for index in range(2):
            up = np.repeat(clean_audio[:16000], 3)  # 48 kHz, as VoiceBank ships it
            sf.write(str(root / f"clean_{split}" / f"p{index}.wav"), up, 48000)
            sf.write(str(root / f"noisy_{split}" / f"p{index}.wav"), np.repeat(noisy_audio[:16000], 3), 48000)
    (root / "clean_testset_wav" / "orphan.wav").write_bytes(b"")  # no noisy twin: skipped
    assert dataset_main(["--paired", str(root), "--out", str(tmp_path / "out")]) == 0
    pairs, _ = load_pairs(tmp_path / "out" / "paired_testset_wav.pt")
    assert len(pairs) == 2 and pairs[0][0].shape == pairs[0][1].shape
    assert abs(pairs[0][0].shape[-1] - 16000) <= 1  # resampled to 16 kHz


def test_masked_l1_ignores_gaps():
    clean = torch.tensor([[1.0, float("nan"), 3.0]])
    estimate = torch.tensor([[1.5, 100.0, 3.0]], requires_grad=True)
    loss = masked_l1(estimate, clean)
    loss.backward()
    assert loss.item() == pytest.approx(0.25) and estimate.grad[0, 1] == 0


def test_si_sdr_of_a_scaled_copy_is_high():
    x = torch.randn(2, 4000)
    assert (si_sdr(0.3 * x, x) > 60).all()
    assert si_sdr(x + torch.randn(2, 4000), x).mean().abs() < 1.0


def test_the_relative_speech_loss_weighs_quiet_noise_like_loud_noise(noisy_audio, clean_audio):
    """Per mixture, relative to the noisy input's own loss: a mixture with 20 dB less noise is no longer
    drowned out by a loud one (its share of the gradient grows), and it needs the noisy input."""
    from training.fitting.losses import LossSettings, denoising_loss, relative_speech_loss, speech_preserving

    clean = torch.from_numpy(clean_audio[None, :16000].astype(np.float32)).repeat(2, 1)
    noise = torch.from_numpy((noisy_audio - clean_audio)[None, :16000].astype(np.float32)) * torch.tensor([[1.0], [0.1]])
    noisy = clean + noise
    shares = []
    for loss in (lambda e: speech_preserving(e, clean, suppression_weight=0.5),
                 lambda e: relative_speech_loss(e, clean, noisy, 0.5)):
        estimate = (clean + 0.5 * noise).requires_grad_()
        loss(estimate).backward()
        norms = estimate.grad.norm(dim=-1)
        shares.append((norms[1] / norms.sum()).item())
    assert shares[1] > shares[0] + 0.1  # measured 0.68 -> 0.84
    assert denoising_loss(noisy, clean, LossSettings("speech-stoi-relative", 0.5), noisy).isfinite()
    with pytest.raises(ValueError, match="noisy input"):
        denoising_loss(clean, clean, LossSettings("speech-stoi-relative"))


def test_the_stoi_weight_scales_only_the_stoi_term(clean_audio, noisy_audio):
    """--stoi-weight w: the speech-stoi loss grows by exactly (w - 10) x (1 - STOI) of the estimate."""
    from training.fitting.losses import STOI_WEIGHT, LossSettings, denoising_loss
    from training.fitting.stoi_loss import stoi

    clean = torch.from_numpy(clean_audio[None, :16000].astype(np.float32))
    noisy = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    base = denoising_loss(noisy, clean, LossSettings("speech-stoi", 0.5))
    heavier = denoising_loss(noisy, clean, LossSettings("speech-stoi", 0.5, stoi_weight=2 * STOI_WEIGHT))
    expected = STOI_WEIGHT * (1 - stoi(noisy, clean).mean())
    assert expected > 0.5 and torch.isclose(heavier - base, expected, rtol=1e-4)
    assert torch.equal(denoising_loss(noisy, clean, LossSettings("speech", 0.5, stoi_weight=0.0)),
                       denoising_loss(noisy, clean, LossSettings("speech", 0.5)))


def test_the_sisdr_weight_scales_only_the_sisdr_term(clean_audio, noisy_audio):
    """--sisdr-weight w: the speech losses fall by exactly (w - 0.01) x the estimate's SI-SDR in dB."""
    from training.fitting.losses import SISDR_WEIGHT, LossSettings, denoising_loss, si_sdr

    clean = torch.from_numpy(clean_audio[None, :16000].astype(np.float32))
    noisy = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    sdr = si_sdr(noisy, clean).mean()
    assert abs(sdr) > 1  # the noisy input's own SI-SDR, so that the check below can fail
    for name in ("speech", "speech-stoi"):
        base = denoising_loss(noisy, clean, LossSettings(name, 0.5))
        heavier = denoising_loss(noisy, clean, LossSettings(name, 0.5, sisdr_weight=11 * SISDR_WEIGHT))
        assert torch.isclose(base - heavier, 10 * SISDR_WEIGHT * sdr, rtol=1e-4)


@pytest.mark.slow
def test_short_training_run_lowers_the_loss(tmp_path, fixture_split):
    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5))), 12, seed=3)
    data = save_pairs(pairs, tmp_path / "train.pt")
    out = tmp_path / "tiny.pt"
    code = train.main(["--model", "gru-small", "--data", str(data), "--out", str(out), "--epochs", "4",
                       "--batch", "4", "--loss", "l1", "--lr", "3e-3", "--seed", "1", "--quiet"])
    assert code == 0
    history = torch.load(out.with_name("tiny.last.pt"), weights_only=True)["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model, checkpoint = load_checkpoint(out)
    assert checkpoint["trained"] and "validation" in checkpoint["metrics"]
    assert (tmp_path / "tiny_plots" / "loss_curve.png").stat().st_size > 1000
    assert (tmp_path / "tiny_plots" / "epoch_001.png").exists()


@pytest.mark.slow
def test_training_can_keep_the_checkpoint_with_the_best_validation_pesq(tmp_path, fixture_split, capsys):
    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=2.0, snr_db=(0, 10))), 10, seed=5)
    data = save_pairs(pairs, tmp_path / "train.pt")
    out = tmp_path / "by_pesq.pt"
    assert train.main(["--model", "gru-small", "--data", str(data), "--out", str(out), "--epochs", "3",
                       "--batch", "4", "--lr", "3e-3", "--seed", "2", "--select-by", "pesq", "--quiet"]) == 0
    history = torch.load(out.with_name("by_pesq.last.pt"), weights_only=True)["history"]
    scores = [record["val_pesq"] for record in history]
    assert len(scores) == 3 and all(1.0 < score < 4.7 for score in scores)
    _, checkpoint = load_checkpoint(out)
    assert checkpoint["metrics"]["validation"]["pesq"] == max(scores)
    assert checkpoint["training"]["epochs"] == scores.index(max(scores)) + 1
    assert "val PESQ-WB" in capsys.readouterr().out
    assert (tmp_path / "by_pesq_plots" / "loss_curve.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_fine_tune_that_gets_worse_writes_nothing(tmp_path, fixture_split, capsys):
    from rtdenoise.models import resolve_model_path

    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=1.0, snr_db=(0, 10))), 8, seed=6)
    data = save_pairs(pairs, tmp_path / "train.pt")
    out = tmp_path / "tuned.pt"
    shipped = str(resolve_model_path("gru"))  # good weights, then a step size that can only wreck them
    assert train.main(["--model", "gru", "--data", str(data), "--init", shipped, "--out", str(out),
                       "--epochs", "1", "--batch", "4", "--optimizer", "sgd", "--lr", "1e4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "initial weights: val loss" in printed and "an epoch must beat this" in printed
    assert "no epoch beat the initial weights" in printed and not out.exists()


def test_the_selection_figure_is_the_one_asked_for():
    config = train.TrainConfig()
    sharper = {"loss": -0.40, "si_sdr_improvement": 5.0, "pesq": 1.60}  # more SI-SDR, less PESQ
    kinder = {"loss": -0.35, "si_sdr_improvement": 4.0, "pesq": 1.65}

    def pick(select_by: str, lab: bool = False) -> dict:
        return max((sharper, kinder), key=lambda m: validation.selection_score(m, select_by, config, lab))

    assert pick("auto") is sharper and pick("si_sdr") is sharper and pick("loss") is sharper
    assert pick("pesq") is kinder
    assert validation.selection_score({**kinder, "pesq": float("nan")}, "pesq", config, False) == -np.inf
    assert validation.selection_score(kinder, "auto", config, lab=True) == 0.35


def test_learning_rate_warms_up_then_follows_its_schedule():
    assert train_steps.scheduled_lr(1e-3, 1e-3, None, 0, 100) == pytest.approx(1e-5)  # first warm-up step
    assert train_steps.scheduled_lr(1e-3, 1e-3, None, 49, 100) == pytest.approx(5e-4)
    assert train_steps.scheduled_lr(4e-4, 1e-3, None, 500, 100) == pytest.approx(4e-4)  # the epoch schedule's value
    assert train_steps.scheduled_lr(4e-4, 1e-3, 0.0, 500, 0) == pytest.approx(1e-3)  # time budget: cosine from the top
    assert train_steps.scheduled_lr(4e-4, 1e-3, 1.0, 500, 0) == pytest.approx(5e-5)  # ... down to 5 %


@pytest.mark.slow
def test_lab_recipe_reports_train_and_test_l1(tmp_path, fixture_split, capsys):
    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.25)), 60, seed=4)
    data = save_pairs(pairs, tmp_path / "lab.pt")
    assert train.main(["--model", "cnn-lab", "--data", str(data), "--lab", "--epochs", "2",
                       "--out", str(tmp_path / "lab_cnn.pt"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SGD" in out.upper() or '"optimizer": "sgd"' in out
    assert out.count("train loss") == 2 and "val loss" in out
    recipe = torch.load(tmp_path / "lab_cnn.last.pt", weights_only=True)["training"]["recipe"]
    assert recipe["held_out"] == 10 and recipe["steps_per_epoch"] == 2  # what the run used: 50 pairs, batch 32


def test_corpus_keeps_clean_prompts_and_drops_hissy_ones(clean_audio):
    from training.corpus import is_clean_recording, trim_silence

    speech = trim_silence(clean_audio)
    hiss = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32) * 0.02 * np.abs(speech).max()
    assert is_clean_recording(speech)
    assert not is_clean_recording(speech + hiss)
    assert not is_clean_recording(speech[:100])  # too short to judge


def test_corpus_folder_packs_into_a_capped_npz(tmp_path, clean_audio):
    import json

    from training.dataset import load_corpus_split
    from training.dataset import main as dataset_main

    rng = np.random.default_rng(0)
    corpus, entries = tmp_path / "corpus", []
    for split, group, kind, seconds in (("train", "voice_a", "speech", 5), ("train", "voice_a", "speech", 5),
                                        ("train", "hum", "noise", 90), ("validation", "voice_b", "speech", 3),
                                        ("validation", "fan", "noise", 20), ("test", "voice_c", "speech", 3)):
        audio = clean_audio[: seconds * 16000] if kind == "speech" else rng.uniform(-0.1, 0.1, seconds * 16000)
        path = corpus / kind / group / f"{len(entries)}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio.astype(np.float32), 16000, subtype="FLOAT")
        entries.append({"path": str(path.relative_to(corpus)), "kind": kind, "group": group, "split": split,
                        **({"sex": "female"} if kind == "speech" else {"type": "hum"})})
    (corpus / "manifest.json").write_text(json.dumps({"sample_rate": 16000, "entries": entries}))
    pack = tmp_path / "pack.npz"
    assert dataset_main(["--corpus", str(corpus), "--pack", str(pack), "--pack-noise-minutes", "1"]) == 0
    train, validation = load_corpus_split(pack, "train"), load_corpus_split(pack, "validation")
    assert sum(len(c.audio) for c in train.speech) == 2 * len(clean_audio[: 5 * 16000])  # under the cap: all kept
    assert sum(len(c.audio) for c in train.noise) == 60 * 16000  # 90 s cut to the 1-minute cap
    assert [c.group for c in validation.speech] == ["voice_b"] and not load_corpus_split(pack, "test").speech
    assert np.abs(train.speech[0].audio - clean_audio[: len(train.speech[0].audio)]).max() < 1 / 32767 + 1e-6
    parts = tmp_path / "parts"
    parts.mkdir()
    assert dataset_main(["--corpus", str(corpus), "--pack", str(parts / "p.npz"), "--pack-noise-minutes", "1",
                         "--pack-parts", "2", "--pack-mulaw-noise", "--pack-splits", "train"]) == 0
    assert sorted(p.name for p in parts.iterdir()) == ["p-1-of-2.npz", "p-2-of-2.npz"]
    folder = load_corpus_split(parts, "train")  # a folder of parts is one corpus
    assert sorted(len(c.audio) for c in folder.speech) == sorted(len(c.audio) for c in train.speech)
    noise = np.concatenate([c.audio for c in folder.noise])
    reference = np.concatenate([c.audio for c in train.noise])
    assert len(noise) == len(reference) and not load_corpus_split(parts, "validation").speech
    error = np.sort(noise) - np.sort(reference)  # same samples, mu-law quantised: 30 dB below the noise or better
    assert 20 * np.log10(np.sqrt(np.mean(error ** 2)) / np.sqrt(np.mean(reference ** 2))) < -30


def test_evaluate_scores_recorded_mixtures_per_band_and_with_a_limit(tmp_path, fixture_split, capsys):
    """The evaluation command on recorded speech + birdsong: tables, JSON, and the shipped GRU helps."""
    import json

    from training import evaluate

    mixer = Mixer(fixture_split, MixConfig(seconds=2.0, pitch_shift_probability=0, silence_probability=0,
                                           synthetic_probability=0, synthetic_only_probability=0,
                                           babble_probability=0))
    rng = np.random.default_rng(1)
    mixes = [mixer.mix(rng, snr) for snr in (0.0, 0.0, 10.0, 10.0)]
    path = save_pairs([(torch.from_numpy(n)[None], torch.from_numpy(c)[None]) for n, c, _ in mixes],
                      tmp_path / "test.pt", [meta for _, _, meta in mixes])
    assert evaluate.main(["--data", str(path), "--model", "gru", "--max-attenuation", "12",
                          "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "bands.png")]) == 0
    assert (tmp_path / "bands.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "gru max 12 dB" in printed and "by SNR band" in printed
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results) - {"RNNoise", "DeepFilterNet3"} == {"noisy input", "spectral gating", "gru", "gru max 12 dB"}
    assert set(results["gru"]["snr"]) == {"+0 dB", "+10 dB"} and results["gru"]["overall"]["clips"] == 4
    sdr_i = {name: r["overall"]["si_sdr_i"] for name, r in results.items()}
    assert sdr_i["noisy input"] == pytest.approx(0.0, abs=1e-6)
    assert sdr_i["gru"] > sdr_i["gru max 12 dB"] > sdr_i["noisy input"] + 1.0
    assert results["gru"]["overall"]["pesq"] > results["noisy input"]["overall"]["pesq"]
    assert evaluate.main(["--data", str(path), "--model", "gru", "--every", "2", "--no-baselines",
                          "--json", str(tmp_path / "every.json")]) == 0  # mixtures 0 and 2: one at 0 dB, one at 10
    every = json.loads((tmp_path / "every.json").read_text())["gru"]
    assert every["overall"]["clips"] == 2 and set(every["snr"]) == {"+0 dB", "+10 dB"}


@pytest.mark.parametrize("name", ["RNNoise", "DeepFilterNet3"])
def test_published_baselines_clean_recorded_audio_in_line_with_the_input(name, fixture_split):
    """RNNoise and DeepFilterNet3 (the compare extra) line up with their input and remove birdsong."""
    from scipy.signal import correlate

    from training.scoring.baselines import available
    from training.scoring.metrics import si_sdr_db

    systems = available()
    if name not in systems:
        pytest.skip(f"{name}'s package is not installed (pip install '.[compare]')")
    mixer = Mixer(fixture_split, MixConfig(seconds=3.0, pitch_shift_probability=0, silence_probability=0,
                                           synthetic_probability=0, synthetic_only_probability=0,
                                           babble_probability=0))
    noisy, clean, _ = mixer.mix(np.random.default_rng(3), 0.0)
    out = systems[name](noisy)
    assert out.shape == noisy.shape and np.isfinite(out).all()
    lag = int(np.argmax(correlate(out, clean, "full", method="fft"))) - (len(clean) - 1)
    assert abs(lag) <= 1  # output sample n estimates clean sample n (to a sample: their filters shift phase)
    assert si_sdr_db(out, clean) > si_sdr_db(noisy, clean) + 3.0


def test_training_commands_give_one_line_errors_on_bad_files(tmp_path):
    """Run as users run them (python -m), so the exit status and stderr are what a shell sees."""
    import os
    import pickle
    import subprocess
    import sys

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("echo owned > owned.txt",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps([RunsCode()]))
    (tmp_path / "text.pt").write_text("not tensors\n")
    cases = [(["training.train", "--data", "missing.pt", "--out", "x.pt"], "missing.pt: no such file"),
             (["training.evaluate", "--data", "text.pt", "--model", "gru"], "text.pt: not a lab-format file"),
             (["training.evaluate", "--data", "evil.pt", "--model", "gru"], "evil.pt: not a lab-format file"),
             (["training.train", "--corpus", "nowhere", "--out", "x.pt"], "nowhere: not a corpus folder"),
             (["training.dataset", "--corpus", "nowhere", "--out", "d"], "nowhere: not a corpus folder"),
             (["training.corpus", "--out", "c", "--speech", "nowhere"], "nowhere: no such folder")]
    repo = str(DATA.parent.parent)
    for arguments, expected in cases:
        result = subprocess.run([sys.executable, "-m", *arguments], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120, env={**os.environ, "PYTHONPATH": repo})
        assert result.returncode == 2, (arguments, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines == [f"python -m {arguments[0]}: error: {lines[-1].split(': error: ', 1)[-1]}"], result.stderr
        assert expected in lines[0], lines
    assert not (tmp_path / "owned.txt").exists()  # the pickle's code never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt", "text.pt"]  # and nothing was written


@pytest.mark.parametrize("option,value", [("--batch", "0"), ("--epochs", "0"), ("--lr", "-1"), ("--lr", "nan"),
                                          ("--steps-per-epoch", "0"), ("--segment-seconds", "0"),
                                          ("--max-minutes", "-1"), ("--workers", "-2"),
                                          ("--suppression-weight", "-1"), ("--continuous-probability", "1.5"),
                                          ("--clean-probability", "-0.1"), ("--room-probability", "2"),
                                          ("--pitch-shift-probability", "-0.2"), ("--raise-pitch-share", "1.5"),
                                          ("--diphone-voice-share", "1.1")])
def test_training_refuses_settings_that_would_train_nothing(tmp_path, option, value, capsys):
    if value == "nan":  # not even a number to check: argparse refuses it, naming the option
        with pytest.raises(SystemExit) as refused:
            train.main(["--model", "gru-small", "--data", str(tmp_path / "unused.pt"), "--out",
                        str(tmp_path / "m.pt"), option, value])
        assert refused.value.code == 2 and f"argument {option}: expected a finite number" in capsys.readouterr().err
        return
    with pytest.raises(ValueError, match=option):
        train.main(["--model", "gru-small", "--data", str(tmp_path / "unused.pt"), "--out", str(tmp_path / "m.pt"),
                    option, value])
    assert list(tmp_path.iterdir()) == []  # refused before any file is read or written


@pytest.mark.parametrize("share,expected", [(None, 0.5), (0.0, 0.0), (0.1, 0.1), (1.0, 1.0)])
def test_diphone_voices_speak_the_share_of_mixtures_asked_for(fixture_split, share, expected):
    """Voices drawn evenly by default (one diphone voice of two here); a share puts the diphone voices in that
    part of the mixtures and the other voices in the rest."""
    from training.dataset import Clip, CorpusSplit, MixConfig, Mixer
    from training.recordings.sources import DIPHONE_GROUPS

    diphone_voice = sorted(DIPHONE_GROUPS)[0]
    speech = fixture_split.speech[0].audio
    split = CorpusSplit(speech=[Clip(speech, "spk_a", "female"), Clip(speech[::-1].copy(), diphone_voice, "male")],
                        noise=fixture_split.noise)
    mixer = Mixer(split, MixConfig(seconds=1.0, balance_speakers=True, diphone_voice_share=share))
    rng = np.random.default_rng(3)
    drawn = [mixer.balanced_speaker(rng) for _ in range(2000)]
    assert set(drawn) <= {"spk_a", diphone_voice}
    assert abs(drawn.count(diphone_voice) / len(drawn) - expected) < 0.03


def test_the_recording_chain_keeps_speech_and_target_in_line(fixture_split):
    """Room, microphone, band, floor and clipping: the target stays aligned with what the mixture holds."""
    from training.mixing.augment import ChainConfig, RecordingChain

    speech = fixture_split.speech[0].audio[:32000]
    chain = RecordingChain(ChainConfig(room_probability=1.0, eq_probability=1.0, band_probabilities=(1, 0, 0),
                                       floor_probability=1.0, clip_probability=1.0, rir_bank=4))
    rng = np.random.default_rng(0)
    heard, target = chain.speech(speech, rng)
    lag = int(np.argmax(np.correlate(heard[:8000], target[:8000], "full"))) - 7999
    assert abs(lag) <= 2  # the room adds a tail, not a delay between mixture and target
    assert np.std(heard - target) > 0.05 * np.std(target)  # the late reverberation is not in the target
    noisy, coloured = chain.microphone([heard, target], rng)
    spectrum = np.abs(np.fft.rfft(coloured))
    freqs = np.fft.rfftfreq(len(coloured), 1 / 16000)
    assert spectrum[freqs > 5000].mean() < 0.05 * spectrum[(freqs > 500) & (freqs < 3000)].mean()  # telephone band
    clipped = chain.clip(noisy, rng)
    assert np.abs(clipped).max() < np.abs(noisy).max()
    assert chain.noise_floor(1000, 0.1, rng).std() < 0.1 * 10 ** (-40 / 20)


def test_a_band_model_trains_with_the_recording_chain_on_a_corpus_folder(tmp_path, fixture_corpus):
    """The corpus pipeline end to end on the fixtures: augmented mixing, speech loss, composite selection."""
    corpus = fixture_corpus
    out = tmp_path / "bands.pt"
    assert train.main(["--model", "bands-small", "--corpus", str(corpus), "--augment", "--rooms", "4",
                       "--loss", "speech", "--val-split", "valvoice", "--select-by", "composite",
                       "--batch", "2", "--segment-seconds", "1", "--steps-per-epoch", "3", "--epochs", "2",
                       "--out", str(out), "--quiet"]) == 0
    history = torch.load(out.with_name("bands.last.pt"), weights_only=True)["history"]
    assert len(history) == 2 and all("val_stoi" in h and "val_stoi_noisy" in h for h in history)


def test_a_resumed_run_keeps_its_network_name_and_mixes_new_audio(tmp_path, fixture_corpus):
    """``--resume`` without ``--model``: the run is still the network it was (not the default preset),
    and its mixtures are not the ones its first epochs saw."""
    out = tmp_path / "small.pt"
    common = ["--corpus", str(fixture_corpus), "--loss", "speech", "--val-split", "valvoice", "--batch", "2",
              "--segment-seconds", "1", "--steps-per-epoch", "2", "--out", str(out), "--quiet"]
    assert train.main(["--model", "bands-small", *common, "--epochs", "1"]) == 0
    assert train.main([*common, "--epochs", "2", "--resume"]) == 0
    last = torch.load(out.with_name("small.last.pt"), weights_only=True)
    assert len(last["history"]) == 2 and last["training"]["recipe"]["model"] == "bands-small"


def test_on_the_fly_mixing_after_a_resume_is_new_audio(fixture_split):
    from training.dataset import OnTheFlyDataset

    mixer = Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5)))
    first = [next(iter(OnTheFlyDataset(mixer, 7, resumed_at=at)))[0] for at in (0, 0, 3)]
    assert torch.equal(first[0], first[1])  # a fresh run: the same seed, the same mixtures
    assert not torch.equal(first[0], first[2])


def narrow_pitch_checkpoint() -> dict:
    """A 2x128 pitch band model without look-ahead (the network of the default before it was widened):
    the shipped bands-ahead's weights, which are that network's, in the spec without the look-ahead."""
    from rtdenoise.models import resolve_model_path

    _, checkpoint = load_checkpoint(resolve_model_path("bands-ahead"))
    spec = {**checkpoint["spec"], "lookahead": 0, "low_gain_exponent": 1.0}
    return {"arch": "bands", "spec": spec, "state_dict": checkpoint["state_dict"]}


def test_a_band_gain_model_grows_a_deep_filter_without_changing_its_output(noisy_audio):
    from rtdenoise.models import resolve_model_path
    from training.warm_start import warm_start

    source, checkpoint = load_checkpoint(resolve_model_path("bands-lite"))
    grown = warm_start("bands", checkpoint).eval()  # the preset has the deep filter; the shipped model has not
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in source.parameters())
    audio = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    with torch.no_grad():
        assert torch.equal(grown(audio), source(audio))
    with pytest.raises(SystemExit, match="does not fit"):
        warm_start("bands-small", checkpoint)  # a smaller preset cannot hold it
    pitched = warm_start("bands-pitch", checkpoint)  # the pitch features start at zero: the same gains
    assert pitched.spec.pitch
    with pytest.raises(SystemExit, match="pitch"):
        warm_start("bands", load_checkpoint(resolve_model_path("bands"))[1])  # the default has pitch features
    from rtdenoise.models.registry import build_model

    checkpoint = narrow_pitch_checkpoint()
    default = build_model("bands", checkpoint["spec"])
    default.load_state_dict(checkpoint["state_dict"])
    default.eval()
    learned = warm_start("bands-comb", checkpoint).eval()  # a new head (the per-band comb strengths) starts at zero
    assert learned.spec.learned_comb and learned.spec.pitch_strength == default.spec.pitch_strength
    with torch.no_grad():
        assert torch.allclose(learned(audio), default(audio), atol=1e-6)  # sigmoid(0 + offset) = the fixed strength
    with pytest.raises(SystemExit, match="comb_head"):
        warm_start("bands-pitch", {"arch": "bands", "spec": learned.spec_dict(), "state_dict": learned.state_dict()})
    floored = warm_start("bands-floor", checkpoint).eval()  # the noise-floor features start at zero weight
    assert floored.encode.in_features == default.encode.in_features + default.spec.bands
    with torch.no_grad():
        assert torch.equal(floored(audio), default(audio))
    with pytest.raises(SystemExit, match="does not fit"):
        warm_start("bands-ahead", {"arch": "bands", "spec": floored.spec_dict(), "state_dict": floored.state_dict()})


def test_the_default_grows_a_deep_filter_between_its_input_features_with_the_same_output(noisy_audio):
    """The deep filter's low-bin features come before the pitch and noise-floor ones: each trained
    feature's weights move to where that feature now is, so the grown model starts as the default."""
    from rtdenoise.models import resolve_model_path
    from training.warm_start import warm_start

    source, checkpoint = load_checkpoint(resolve_model_path("bands"))
    checkpoint = {**checkpoint, "spec": {**checkpoint["spec"], "low_gain_exponent": 1.0, "high_band_exponent": 0.8}}
    source = warm_start("bands-across", checkpoint).eval()  # the default's network as the preset states it
    grown = warm_start("bands-across-df", checkpoint).eval()
    assert grown.df_bins and grown.encode.in_features == source.encode.in_features + 2 * grown.df_bins
    audio = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(grown(audio), source(audio), atol=1e-6)
    with pytest.raises(SystemExit, match="does not fit.*above_floor"):
        warm_start("bands-ahead", checkpoint)  # a preset without the noise-floor features cannot hold it


def test_the_default_grows_into_2x256_units_with_the_same_output(noisy_audio):
    """bands-across-wide: the attention path reads the GRU's output through a wider layer whose new
    columns start at zero, so the grown default still gives its own output."""
    from rtdenoise.models import resolve_model_path
    from training.warm_start import warm_start

    _, checkpoint = load_checkpoint(resolve_model_path("bands"))
    checkpoint = {**checkpoint, "spec": {**checkpoint["spec"], "low_gain_exponent": 1.0, "high_band_exponent": 0.8}}
    source = warm_start("bands-across", checkpoint).eval()
    torch.manual_seed(0)
    grown = warm_start("bands-across-wide", checkpoint).eval()
    assert grown.gru.hidden_size == 256 and grown.across.from_hidden.in_features == 256
    assert grown.gru.weight_hh_l0[:192, 192:].abs().sum() == 0 and grown.gru.weight_hh_l0[256:448, 192:].abs().sum() == 0
    assert grown.gru.weight_hh_l0[192:256].abs().sum() > 0  # the new units are alive
    audio = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(grown(audio), source(audio), atol=1e-6)


def test_a_wider_network_grows_gate_by_gate_with_live_new_units_and_the_same_output(noisy_audio, tmp_path):
    from rtdenoise.models.registry import build_model, save_checkpoint
    from training.warm_start import main as grow

    checkpoint = narrow_pitch_checkpoint()
    default = build_model("bands", checkpoint["spec"])
    default.load_state_dict(checkpoint["state_dict"])
    narrow = save_checkpoint(default, tmp_path / "narrow.pt", name="narrow")
    out = tmp_path / "wide.pt"
    grow(["--model", "bands-wide", "--init", str(narrow), "--seed", "3", "--out", str(out)])
    wide, info = load_checkpoint(out)
    old, new = default.spec.hidden, wide.spec.hidden
    assert new > old and info["training"]["recipe"]["model"] == "bands-wide"
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1"):
        grown, trained = getattr(wide.gru, name).detach(), getattr(default.gru, name).detach()
        for gate in range(3):  # each of r, z, n holds the trained gate in its leading block
            rows = grown[gate * new: gate * new + old]
            assert torch.equal(rows[:, :old] if rows.dim() == 2 else rows, trained[gate * old: (gate + 1) * old])
            if rows.dim() == 2:
                assert not rows[:, old:].any()  # new units feed no trained unit
            assert grown[gate * new + old: (gate + 1) * new].abs().sum() > 0  # the new units start alive
    assert not wide.gain_head.weight[:, old:].any() and wide.encode.weight[old:].abs().sum() > 0
    audio = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(wide.eval()(audio), default.eval()(audio), atol=1e-6)
    with pytest.raises(SystemExit, match="overwrite"):
        grow(["--model", "bands-wide", "--init", str(out), "--out", str(out)])


@pytest.mark.slow
def test_train_only_the_grown_deep_filter_keeps_every_other_weight(tmp_path, fixture_split, capsys):
    from rtdenoise.models import resolve_model_path

    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=0.5, snr_db=(0, 5))), 8, seed=4)
    data = save_pairs(pairs, tmp_path / "train.pt")
    shipped = str(resolve_model_path("bands-lite"))
    out = tmp_path / "df.pt"
    assert train.main(["--model", "bands", "--init", shipped, "--train-only", "df_head", "--data", str(data),
                       "--suppression-weight", "0.5", "--epochs", "2", "--batch", "4", "--lr", "1e-3", "--keep-epochs",
                       "--loss", "speech", "--out", str(out), "--quiet"]) == 0
    _, start = load_checkpoint(shipped)
    trained = torch.load(out.with_name("df.last.pt"), weights_only=True)
    assert trained["training"]["recipe"]["train_only"] == "df_head"
    epochs = [load_checkpoint(tmp_path / f"df.e{n}.pt")[1] for n in (1, 2)]  # --keep-epochs: one file per epoch
    assert [e["training"]["epochs"] for e in epochs] == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(epochs[1]["state_dict"].values(), trained["state_dict"].values()))
    assert trained["training"]["recipe"]["suppression_weight"] == 0.5
    weights = trained["state_dict"]
    assert weights["df_head.weight"].abs().sum() > 0  # it learned (it started at zero)
    for name, before in start["state_dict"].items():
        after = weights[name][tuple(slice(0, s) for s in before.shape)]
        assert torch.equal(after, before), name  # the band-gain network is exactly the shipped one
    with pytest.raises(SystemExit, match="no parameter of BandDenoiser starts with 'nosuch'"):
        train.main(["--model", "bands", "--init", shipped, "--train-only", "nosuch", "--data", str(data),
                    "--epochs", "1", "--out", str(tmp_path / "never.pt"), "--quiet"])


def test_level_diagnostics_measure_the_noise_left_in_pauses_and_the_speech_kept(clean_audio):
    from training.scoring.level_diagnostics import level_diagnostics, pause_frames

    clean = clean_audio[:16000 * 4].astype(np.float64)
    assert 0 < pause_frames(clean).mean() < 1  # the recording has speech and pauses
    noise = np.random.default_rng(0).normal(0, 0.01, len(clean))
    levels = level_diagnostics(0.5 * clean + 0.1 * noise, clean, clean + noise)
    assert abs(levels["speech_kept_db"] - 20 * np.log10(0.5)) < 0.3
    assert abs(levels["noise_left_db"] - 20 * np.log10(0.1)) < 1.0  # pauses: (near) noise alone
    untouched = level_diagnostics(clean + noise, clean, clean + noise)
    assert abs(untouched["noise_left_db"]) < 1e-9 and abs(untouched["speech_kept_db"]) < 0.1


def test_averaging_checkpoints_gives_the_mean_weights_and_refuses_other_networks(tmp_path, capsys):
    from rtdenoise.models import resolve_model_path
    from rtdenoise.models.registry import save_checkpoint
    from training import average

    shipped = resolve_model_path("bands")
    model, _ = load_checkpoint(shipped)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5)
    moved = save_checkpoint(model, tmp_path / "moved.pt", name="moved", trained=True)
    out = tmp_path / "mean.pt"
    assert average.main([str(shipped), str(moved), "--out", str(out)]) == 0
    mean, checkpoint = load_checkpoint(out)
    original, _ = load_checkpoint(shipped)
    for (name, value), before in zip(mean.state_dict().items(), original.state_dict().values()):
        if value.is_floating_point() and name in dict(model.named_parameters()):
            assert torch.allclose(value, before + 0.25, atol=1e-6), name
    assert checkpoint["training"]["averaged"] == [str(shipped), str(moved)]
    with pytest.raises(Exception, match="a different network"):
        average.main([str(shipped), str(resolve_model_path("gru")), "--out", str(tmp_path / "never.pt")])
    assert not (tmp_path / "never.pt").exists()


def test_one_checkpoint_takes_a_low_gain_exponent_with_its_weights_unchanged(tmp_path):
    from rtdenoise.models.registry import build_preset, save_checkpoint
    from training import average

    source = save_checkpoint(build_preset("bands-pitch"), tmp_path / "p.pt", name="p")
    assert average.main([str(source), "--out", str(tmp_path / "low.pt"), "--low-gain-exponent", "3"]) == 0
    model, checkpoint = load_checkpoint(tmp_path / "low.pt")
    assert checkpoint["spec"]["low_gain_exponent"] == 3 and model.low_bands == 3
    original, _ = load_checkpoint(source)
    assert all(torch.equal(value, original.state_dict()[name]) for name, value in model.state_dict().items())
    for inputs, option in (([source], []), ([source], ["--low-gain-exponent", "0.5"]),
                           ([save_checkpoint(build_preset("gru-small"), tmp_path / "g.pt", name="g")],
                            ["--low-gain-exponent", "2"])):
        with pytest.raises(SystemExit) as refused:  # one checkpoint and no setting; louder; not a band model
            average.main([*map(str, inputs), "--out", str(tmp_path / "never.pt"), *option])
        assert refused.value.code == 2
    assert not (tmp_path / "never.pt").exists()


def test_a_step_whose_loss_is_not_finite_leaves_the_weights_alone():
    """One bad batch (here a NaN in the input) is skipped, not learned: the weights stay finite and unchanged."""
    from rtdenoise.models.registry import build_preset
    from training.fitting.distributed import ChunkedForward

    torch.manual_seed(0)
    model = build_preset("bands-small")
    config = train.TrainConfig(model="bands-small", loss="speech")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    clean = torch.randn(2, 3200) * 0.1
    noisy = clean + 0.05 * torch.randn_like(clean)
    noisy[0, 1000] = float("nan")
    assert np.isnan(train_steps.train_step(ChunkedForward(model, 1600), model, noisy, clean, config, optimizer))
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    noisy[0, 1000] = 0.0
    assert np.isfinite(train_steps.train_step(ChunkedForward(model, 1600), model, noisy, clean, config, optimizer))
    assert not torch.equal(before["encode.weight"], model.encode.weight)


def test_averaging_can_set_the_comb_strength_of_a_pitch_model_only(tmp_path):
    from rtdenoise.models.registry import build_preset, save_checkpoint
    from training import average

    pitch = [save_checkpoint(build_preset("bands-pitch"), tmp_path / f"p{i}.pt", name="p") for i in range(2)]
    plain = [save_checkpoint(build_preset("bands-gains"), tmp_path / f"g{i}.pt", name="g") for i in range(2)]
    assert average.main([*map(str, pitch), "--out", str(tmp_path / "mean.pt"), "--pitch-strength", "0.3"]) == 0
    model, checkpoint = load_checkpoint(tmp_path / "mean.pt")
    assert model.spec.pitch_strength == 0.3 and checkpoint["spec"]["pitch_strength"] == 0.3
    for inputs, strength in ((plain, "0.3"), (pitch, "1.5")):
        with pytest.raises(SystemExit) as refused:
            average.main([*map(str, inputs), "--out", str(tmp_path / "never.pt"), "--pitch-strength", strength])
        assert refused.value.code == 2
    assert not (tmp_path / "never.pt").exists()


def test_an_average_records_the_most_epochs_any_of_its_checkpoints_trained(tmp_path):
    from rtdenoise.models.registry import build_preset, save_checkpoint
    from training import average

    inputs = [save_checkpoint(build_preset("bands-small"), tmp_path / f"e{count}.pt", name="e",
                              training={"epochs": count}) for count in (6, 26, 11)]
    assert average.main([*map(str, inputs), "--out", str(tmp_path / "mean.pt")]) == 0
    training = load_checkpoint(tmp_path / "mean.pt")[1]["training"]
    assert training["epochs"] == 26 and training["averaged"] == [str(path) for path in inputs]


def test_evaluate_takes_pairs_without_metadata(tmp_path, fixture_split, capsys):
    """Lab files from elsewhere (e.g. python -m training.dataset --paired) have no .meta.json."""
    from training import evaluate

    mixer = Mixer(fixture_split, MixConfig(seconds=2.0))
    rng = np.random.default_rng(4)
    mixes = [mixer.mix(rng, snr) for snr in (0.0, 10.0, 5.0)]
    path = save_pairs([(torch.from_numpy(n)[None], torch.from_numpy(c)[None]) for n, c, _ in mixes],
                      tmp_path / "paired_all.pt")
    assert not path.with_suffix(".meta.json").exists()
    assert evaluate.main(["--data", str(path), "--model", "cnn-lab", "--no-baselines", "--every", "2"]) == 0
    assert "by SNR band" in capsys.readouterr().out


def test_training_without_the_train_extra_says_which_extra_in_one_line(tmp_path, fixture_split):
    import subprocess
    import sys

    pairs, _ = build_pairs(Mixer(fixture_split, MixConfig(seconds=1.0)), 6, seed=0)
    data = save_pairs(pairs, tmp_path / "lab.pt")
    code = ("import sys; sys.modules['matplotlib'] = None; from training.train import main; "
            "from rtdenoise.errors import run_command; "
            f"sys.exit(run_command(lambda: main(['--data', {str(data)!r}, '--out', {str(tmp_path / 'm.pt')!r}]), 'x'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=str(DATA.parent.parent))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m training.train: error: training draws its loss curves with matplotlib, which is missing: pip install "
                                  "'.[train]'"), result.stderr


def test_a_quick_path_trains_and_evaluates_on_your_own_folders_with_nothing_fetched(tmp_path, clean_audio, capsys):
    """corpus --own-only (no packages, no ffmpeg) -> dataset -> train -> evaluate, on one voice and one noise."""
    from training import corpus, dataset, evaluate

    noise = sf.read(str(DATA / "noise_birds.wav"), dtype="float32")[0]
    for kind, audio, rate in (("speech/me", clean_audio, 16000), ("noise/fan", noise, 16000)):
        folder = tmp_path / "mine" / kind
        folder.mkdir(parents=True)
        for index, piece in enumerate(np.array_split(audio, 10)):  # ten files: 8 train, 1 validation, 1 test
            sf.write(str(folder / f"{index}.flac"), piece, rate)
    data = tmp_path / "data"
    assert corpus.main(["--own-only", "--speech", str(tmp_path / "mine" / "speech"),
                        "--noise", str(tmp_path / "mine" / "noise"), "--out", str(data / "corpus"),
                        "--cache", str(tmp_path / "never")]) == 0
    assert not (tmp_path / "never").exists()  # nothing fetched
    assert dataset.main(["--corpus", str(data / "corpus"), "--out", str(data / "lab"), "--seconds", "1",
                         "--train", "4", "--validation", "4", "--test", "5", "--ood", "1"]) == 0
    assert train.main(["--model", "bands-small", "--corpus", str(data / "corpus"), "--loss", "speech",
                       "--segment-seconds", "1", "--batch", "2", "--steps-per-epoch", "2", "--epochs", "1",
                       "--out", str(tmp_path / "mine.pt"), "--quiet"]) == 0
    assert evaluate.main(["--data", str(data / "lab" / "test.pt"), "--model", str(tmp_path / "mine.pt"),
                          "--no-baselines"]) == 0
    assert "by SNR band" in capsys.readouterr().out


def the_default_without_its_attention() -> tuple[torch.nn.Module, dict]:
    """The shipped default with its attention across bands taken out: the trained network it grew from
    (only that path trained since), as a model and as a checkpoint to grow from."""
    from rtdenoise.models import resolve_model_path
    from rtdenoise.models.registry import build_model, read_checkpoint

    checkpoint = read_checkpoint(resolve_model_path("bands"))
    assert checkpoint["spec"]["across_channels"] > 0  # else this test no longer grows anything new
    base = {**checkpoint, "spec": {**checkpoint["spec"], "across_channels": 0},
            "state_dict": {name: weights for name, weights in checkpoint["state_dict"].items()
                           if not name.startswith("across")}}
    model = build_model(base["arch"], base["spec"])
    model.load_state_dict(base["state_dict"])
    return model.eval(), base


@pytest.mark.parametrize("preset, inner, outer", [
    ("bands-fine", ("fine_local", "fine_context"), ("fine_head", "fine_bin_head")),
    ("bands-across", ("across.from_hidden", "across.qkv"), ("across_head",))])
def test_a_trained_band_model_grows_a_new_path_without_changing_its_output(noisy_audio, preset, inner, outer):
    """A new path's output layers start at zero and its inner layers random (so it can learn at all)."""
    from training.warm_start import warm_start

    default, checkpoint = the_default_without_its_attention()
    torch.manual_seed(0)
    grown = warm_start(preset, checkpoint).eval()
    assert grown.fine_bins == (40 if preset == "bands-fine" else 0)
    weights = grown.state_dict()
    assert all(weights[f"{name}.weight"].abs().sum() > 0 for name in inner)
    assert all(weights[f"{name}.weight"].abs().sum() == 0 for name in outer)
    grown.low_bands, grown.spec.low_gain_exponent = default.low_bands, default.spec.low_gain_exponent  # inference-only
    audio = torch.from_numpy(noisy_audio[None, :16000].astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(grown(audio), default(audio), atol=1e-6)


def test_lr_scale_puts_the_named_parameters_in_their_own_faster_group():
    from training.fitting.train_steps import make_model, parameter_groups

    model = make_model("bands-small", None)
    groups = parameter_groups(model, 1e-4, "df_head=10")
    assert [(g["lr"], g["lr_scale"]) for g in groups] == [(1e-4, 1.0), (pytest.approx(1e-3), 10.0)]
    df_head = {id(p) for name, p in model.named_parameters() if name.startswith("df_head")}
    assert {id(p) for p in groups[1]["params"]} == df_head
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len(parameter_groups(model, 1e-4, "")) == 1
    for bad in ("df_head", "df_head=0", "df_head=x", "=3", "nothing_here=2"):
        with pytest.raises(SystemExit, match="--lr-scale"):
            parameter_groups(model, 1e-4, bad)


def test_a_run_with_lr_scale_keeps_its_groups_lrs_in_ratio_and_resumes(tmp_path, fixture_corpus):
    out = tmp_path / "scaled.pt"
    common = ["--model", "bands-small", "--corpus", str(fixture_corpus), "--loss", "speech", "--val-split",
              "valvoice", "--batch", "2", "--segment-seconds", "1", "--steps-per-epoch", "2", "--lr", "1e-4",
              "--lr-scale", "df_head=10", "--max-minutes", "30", "--warmup-steps", "3", "--out", str(out), "--quiet"]
    assert train.main([*common, "--epochs", "1"]) == 0
    assert train.main([*common, "--epochs", "2", "--resume"]) == 0
    last = torch.load(out.with_name("scaled.last.pt"), weights_only=True)
    assert last["training"]["recipe"]["lr_scale"] == "df_head=10" and len(last["history"]) == 2
    slow, fast = last["optimizer"]["param_groups"]
    assert (slow["lr_scale"], fast["lr_scale"]) == (1.0, 10.0)
    assert 0 < slow["lr"] <= 1e-4 and fast["lr"] == pytest.approx(10 * slow["lr"])


def test_a_malformed_lr_scale_stops_the_run_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--lr-scale: 'df_head=fast' is not PREFIX=FACTOR"):
        train.main(["--model", "bands-small", "--corpus", str(tmp_path / "not-read"), "--lr-scale", "df_head=fast",
                    "--out", str(tmp_path / "x.pt"), "--quiet"])
    assert not (tmp_path / "x.pt").exists()


def test_the_expressive_set_mixes_only_its_own_voices_over_the_out_of_domain_noises(tmp_path, fixture_corpus):
    import json

    from training.dataset import load_pairs, main as dataset_main

    manifest = json.loads((fixture_corpus / "manifest.json").read_text())
    speech = next(e for e in manifest["entries"] if e["group"] == "voice_a")
    birds = next(e for e in manifest["entries"] if e["group"] == "birds")
    manifest["entries"] += [dict(speech, group="voice_test", split="test"), dict(birds, group="birds_test", split="test"),
                            dict(speech, group="voice_ood", split="ood"), dict(birds, group="birds_ood", split="ood")]
    (fixture_corpus / "manifest.json").write_text(json.dumps(manifest))
    counts = ["--train", "2", "--validation", "2", "--test", "5", "--ood", "5", "--seconds", "1"]
    assert dataset_main(["--corpus", str(fixture_corpus), "--out", str(tmp_path / "lab"), *counts]) == 0
    assert not (tmp_path / "lab" / "expressive.pt").exists()   # no acted voices in this corpus: skipped
    manifest["entries"].append(dict(speech, group="hedgewars_test", split="expressive"))
    (fixture_corpus / "manifest.json").write_text(json.dumps(manifest))
    assert dataset_main(["--corpus", str(fixture_corpus), "--out", str(tmp_path / "lab"), *counts,
                         "--expressive", "5"]) == 0
    pairs, metas = load_pairs(tmp_path / "lab" / "expressive.pt")
    assert len(pairs) == 5 and {m["speaker"] for m in metas} == {"hedgewars_test"}
    assert {m["noise"] for m in metas} <= {"birds_ood", "white", "pink"}, metas


def test_a_pitch_shift_scales_the_voice_without_folding_its_top_back():
    """Raising a voice by 1/0.7 moves a 7 kHz partial to 10 kHz, above the band: it must be removed, not
    folded back to 6 kHz (linear interpolation kept it at -4 dB there); lowering moves 1 kHz to 800 Hz."""
    from training.dataset import scale_pitch
    rate = 16000
    t = np.arange(rate) / rate
    raised = scale_pitch(np.sin(2 * np.pi * 7000 * t).astype(np.float32), 1 / 0.7)
    assert abs(len(raised) - int(rate * 0.7)) <= 1
    assert np.sqrt(np.mean(raised[200:-200] ** 2)) < 0.01 * np.sqrt(0.5)  # -40 dB and below
    lowered = scale_pitch(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 0.8)
    assert abs(len(lowered) - int(rate / 0.8)) <= 1
    spectrum = np.abs(np.fft.rfft(lowered[:rate]))  # one second: 1 Hz bins
    assert abs(np.argmax(spectrum) - 800) <= 2
