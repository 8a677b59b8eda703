"""Both models: shapes, the streaming contract, near-identity start, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtdenoise.models import CheckpointError, GRUDenoiser, GRUSpec, LAB_PRESET, MimoCNN, MimoCNNSpec, load_checkpoint, save_checkpoint
from rtdenoise.models.registry import PRESETS, build_preset

from .contract import verify_contract

CONTRACT_MODELS = ["cnn-lab", "cnn-large", "gru", "gru-small", "gru-wave", "gru-seed", "bands", "bands-48k", "bands-gains", "bands-pitch", "bands-ahead", "bands-comb",
                   "bands-floor", "bands-wide", "bands-wider", "bands-fine", "bands-across",
                   "bands-across-wide"]


@pytest.mark.parametrize("name", CONTRACT_MODELS)
def test_streaming_contract(name):
    torch.manual_seed(0)
    model = build_preset(name)
    if model.arch == "gru" and model.spec.frontend == "wave":
        torch.nn.init.normal_(model.decode.weight, std=0.1)  # non-identity so the check can fail
    if model.arch == "bands":
        if model.df_bins:
            torch.nn.init.normal_(model.df_head.weight, std=0.05)  # the deep filter starts at zero: wake it up
        torch.nn.init.normal_(model.gain_head.weight, std=0.5)
        if model.spec.learned_comb:
            torch.nn.init.normal_(model.comb_head.weight, std=0.5)
        if model.fine_bins:
            torch.nn.init.normal_(model.fine_head.weight, std=0.5)
            torch.nn.init.normal_(model.fine_bin_head.weight, std=0.5)
        if model.spec.across_channels:
            torch.nn.init.normal_(model.across_head.weight, std=0.5)
    verify_contract(model, seconds=0.5 if name.startswith(("gru", "bands")) and name != "gru-seed" else 0.15)


def test_band_model_is_level_invariant_and_its_bands_cover_every_bin():
    """Its features ignore the input level: a quiet and a loud copy get the same gains (same output shape)."""
    from rtdenoise.models.bands import erb_band_matrix

    for rate, bands in ((16000, 32), (48000, 40)):
        weights = erb_band_matrix(rate // 100 + 1, rate, bands)
        assert torch.allclose(weights.sum(0), torch.ones(weights.shape[1]))
        assert (weights.sum(1) > 0).all()  # no empty band
    for preset in ("bands", "bands-floor"):  # the noise floor's features: levels above a floor of the same input
        torch.manual_seed(0)
        model = build_preset(preset).eval()
        torch.nn.init.normal_(model.gain_head.weight, std=0.5)
        noisy = torch.randn(1, 16000) * 0.05
        with torch.no_grad():
            quiet, loud = model(noisy), model(noisy * 100)
        # once the running normalisation has settled (1 s time constant), the loud copy is the quiet one x 100
        assert torch.allclose(loud[:, 8000:] / 100, quiet[:, 8000:], atol=2e-3 * quiet.abs().max())


def test_noise_floor_falls_at_once_and_rises_slowly():
    """The vectorised floor is the recurrence f = min(f + rise, x); after a step up it climbs at the rise rate."""
    from rtdenoise.models.bands import running_floor

    torch.manual_seed(0)
    values, start, rise = torch.randn(2, 300, 4), torch.randn(2, 4), 0.005
    floor, expected = start.clone(), []
    for frame in range(values.shape[1]):
        floor = torch.minimum(floor + rise, values[:, frame])
        expected.append(floor)
    assert torch.allclose(running_floor(values, start, rise), torch.stack(expected, 1), atol=1e-5)
    step = torch.cat([torch.zeros(1, 100, 1), torch.full((1, 100, 1), 3.0), torch.full((1, 100, 1), -1.0)], 1)
    tracked = running_floor(step, torch.zeros(1, 1), rise)[0, :, 0]
    assert tracked[99] == 0 and torch.isclose(tracked[199], torch.tensor(100 * rise))  # speech 30 dB up: +5 dB in 1 s
    assert tracked[200] == -1  # quieter noise: followed at once


def test_the_low_gain_exponent_removes_more_under_150_hz_and_nothing_else(noisy_audio):
    """Raising the gains of the bands under 150 Hz to a power only deepens what is removed there."""
    from dataclasses import replace

    from rtdenoise.models.bands import BandDenoiser, BandSpec

    torch.manual_seed(0)
    plain = build_preset("bands-pitch").eval()
    torch.nn.init.normal_(plain.gain_head.weight, std=0.5)  # gains well inside (0, 1)
    deeper = BandDenoiser(replace(plain.spec, low_gain_exponent=3.0)).eval()
    deeper.load_state_dict(plain.state_dict())
    assert plain.low_bands == 0 and deeper.low_bands == 3  # centres 0, 50 and 100 Hz at 16 kHz
    audio = torch.from_numpy(noisy_audio[None, :32000].astype(np.float32))
    with torch.no_grad():
        spectra = [torch.stft(model(audio)[0], 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
                   for model in (plain, deeper)]
    below, above = slice(0, 150 * 1024 // 16000), slice(400 * 1024 // 16000, None)  # a 20 ms frame's gains
    assert spectra[1][below].square().sum() < 0.8 * spectra[0][below].square().sum()  # smear ~100 Hz at 1024
    change_above = (spectra[1][above] - spectra[0][above]).square().sum() / spectra[0][above].square().sum()
    assert change_above < 1e-4
    with pytest.raises(ValueError):
        BandSpec(low_gain_exponent=0.5)  # never louder than the network's gains


def test_lab_preset_is_the_lab_spec():
    model = MimoCNN(LAB_PRESET)
    assert [h.shape for h in model.taps] == [torch.Size([40, 1, 5]), torch.Size([40, 5, 1])]
    assert model.num_parameters() == 40 * 5 + 40 * 5
    assert model.latency_samples == 0 and model.hop == 1


def test_mimo_cnn_matches_the_seed_recursion():
    """x_l = tanh(sum_k S^k x_{l-1} H_{l,k}), last layer linear: computed by hand with loops."""
    torch.manual_seed(1)
    model = MimoCNN(MimoCNNSpec(taps=[3, 2], features=[1, 2, 1]))
    x = torch.randn(1, 20)
    expected_layers = x.T  # (N, F)
    for index, taps in enumerate(model.taps):
        n = expected_layers.shape[0]
        out = torch.zeros(n, taps.shape[2])
        for k in range(taps.shape[0]):
            shifted = torch.cat([torch.zeros(k, expected_layers.shape[1]), expected_layers[: n - k]])
            out += shifted @ taps[k].detach()
        expected_layers = torch.tanh(out) if index < len(model.taps) - 1 else out
    assert torch.allclose(model(x).detach(), expected_layers.T, atol=1e-6)


def test_gru_starts_near_identity():
    x = torch.randn(2, 3200) * 0.1
    stft = GRUDenoiser(GRUSpec())
    latency = stft.latency_samples
    with torch.no_grad():
        out = stft(x)
    error = (out[:, latency:] - x[:, : 3200 - latency]).abs().max()
    assert error < 0.06 * x.abs().max()  # gain starts at sigmoid(3) = 0.95
    wave = GRUDenoiser(GRUSpec(frontend="wave", hop=1, hidden=30, layers=1))
    with torch.no_grad():
        assert torch.equal(wave(x), x)


def test_gru_memory_is_carried_between_chunks():
    torch.manual_seed(0)
    model = build_preset("gru-small").eval()
    torch.nn.init.normal_(model.decode.weight, std=0.5)
    x = torch.randn(1, 3200) * 0.1
    with torch.no_grad():
        _, state = model.step(x[:, :1600], model.init_state(1))
        carried, _ = model.step(x[:, 1600:], state)
        fresh, _ = model.step(x[:, 1600:], model.init_state(1))
    assert not torch.allclose(carried, fresh)


def test_band_specs_refuse_what_they_cannot_build():
    from rtdenoise.models.bands import BandSpec

    for bad in ({"lookahead": 3}, {"lookahead": -1}, {"learned_comb": True}):  # a learned comb needs the pitch comb
        with pytest.raises(ValueError, match="invalid band-model spec"):
            BandSpec(**bad)
    assert BandSpec(pitch=True, learned_comb=True, lookahead=2).lookahead == 2


def test_forward_rejects_length_that_is_not_a_hop_multiple():
    with pytest.raises(ValueError):
        build_preset("gru")(torch.zeros(1, 161))


@pytest.mark.parametrize("name", ["cnn-lab", "gru-small"])
def test_checkpoint_round_trip(tmp_path, name):
    model = build_preset(name)
    path = save_checkpoint(model, tmp_path / "m.pt", metrics={"si_sdr": 1.5}, notes="test")
    loaded, checkpoint = load_checkpoint(path)
    assert checkpoint["metrics"] == {"si_sdr": 1.5}
    x = torch.randn(1, 1600)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))


def test_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"format": "rtdenoise-checkpoint", "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused|not a loadable"):
        load_checkpoint(path)
    assert not marker.exists()


def test_bad_checkpoints_are_clear_errors(tmp_path):
    good = save_checkpoint(build_preset("gru-small"), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    other = torch.load(good, weights_only=True)
    other["spec"] = dict(other["spec"], hidden=64)
    torch.save(other, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "mismatch.pt")
    other["arch"] = "transformer"
    torch.save(other, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_checkpoint(tmp_path / "arch.pt")
    other["arch"] = "gru"
    other["spec"] = dict(other["spec"], hidden=128)
    other["sample_rate"] = 48000  # header disagrees with the weights' spec (16 kHz)
    torch.save(other, tmp_path / "rate.pt")
    with pytest.raises(CheckpointError, match="sample rate 48000"):
        load_checkpoint(tmp_path / "rate.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not an rtdenoise checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_every_preset_builds():
    for name in PRESETS:
        assert build_preset(name).num_parameters() > 0
