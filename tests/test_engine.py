"""The engine: alignment, lengths, priming, resampling, channels, NaN, on recorded audio."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtdenoise.models.bands import BandDenoiser, BandSpec

from rtdenoise.engine import StreamingDenoiser, load_model, pick_device
from rtdenoise.models import LAB_PRESET, GRUDenoiser, GRUSpec, MimoCNN, MimoCNNSpec
from rtdenoise.models.registry import build_preset


def run_offline(model, audio: np.ndarray, rate: int, block: int) -> np.ndarray:
    engine = StreamingDenoiser(model, channels=audio.shape[1], sample_rate=rate, compensate_latency=True)
    pieces = [engine.process(audio[i:i + block]) for i in range(0, len(audio), block)]
    return np.concatenate(pieces + [engine.flush()])


def identity_gru() -> GRUDenoiser:
    """An STFT GRU whose gain is exactly 1: the pipeline must then return the input."""
    model = GRUDenoiser(GRUSpec(hidden=16, layers=1)).eval()
    torch.nn.init.zeros_(model.decode.weight)
    torch.nn.init.constant_(model.decode.bias, 60.0)  # sigmoid(60) == 1.0 in float32
    return model


@pytest.mark.parametrize("block", [1, 97, 160, 4000])
def test_offline_output_lines_up_with_input(noisy_audio, block):
    audio = noisy_audio[:16000, None]
    out = run_offline(identity_gru(), audio, 16000, block)
    assert out.shape == audio.shape
    assert np.abs(out - audio).max() < 1e-5


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_resampled_streams_keep_length_and_content(noisy_audio, rate, channels):
    from rtdenoise.engine.resample import StreamResampler

    resampler = StreamResampler(16000, rate, 1)
    audio = np.concatenate([resampler.process(noisy_audio[None, :16000]), resampler.flush()], axis=1)[0]
    audio = np.stack([audio * (0.5 + 0.5 * c) for c in range(channels)], axis=1)
    out = run_offline(identity_gru(), audio, rate, 1234)
    assert out.shape == audio.shape
    # Content survives the trip through 16 kHz (band-limited to 8 kHz, so compare correlation).
    middle = slice(len(audio) // 10, -len(audio) // 10)
    for c in range(channels):
        correlation = np.corrcoef(out[middle, c], audio[middle, c])[0, 1]
        assert correlation > 0.99


def test_priming_continues_as_if_the_stream_started_earlier(noisy_audio):
    torch.manual_seed(0)
    model = build_preset("gru-small").eval()
    torch.nn.init.normal_(model.decode.weight, std=0.2)
    audio = noisy_audio[:8000, None]
    reference = run_offline(model, audio, 16000, 500)
    engine = StreamingDenoiser(model, channels=1, compensate_latency=True)
    engine.prime(audio[:3001])
    rest = np.concatenate([engine.process(audio[3001:]), engine.flush()])
    assert rest.shape[0] == len(audio) - 3001
    assert np.abs(rest - reference[3001:]).max() < 1e-5
    # Without priming the same stretch comes out differently: the state matters.
    cold = StreamingDenoiser(model, channels=1, compensate_latency=True)
    cold_rest = np.concatenate([cold.process(audio[3001:]), cold.flush()])
    assert np.abs(cold_rest - reference[3001:]).max() > 1e-4


@pytest.mark.parametrize("offline", [True, False])
def test_a_stream_that_starts_in_digital_silence_is_denoised_as_if_it_started_at_its_first_sound(noisy_audio, offline):
    """Leading zeros (a file's, a microphone opened muted) never reach the model: a single frame of them would drag
    the band model's level and noise-floor statistics to nothing for seconds. The output is silence until the
    hop the first sound falls in, then what a stream starting at that hop gives."""
    model = load_model("bands", "cpu")[0]
    audio = noisy_audio[:32000, None]

    def run(stream: np.ndarray) -> np.ndarray:
        if offline:
            engine = StreamingDenoiser(model, 1, compensate_latency=True, coalesce=True, chunk_samples=1600)
            return np.concatenate([engine.process(stream), engine.flush()])
        engine = StreamingDenoiser(model, 1)
        return np.concatenate([engine.process(stream[i:i + 160]) for i in range(0, len(stream), 160)])

    hops = 30 * model.hop
    muted_first = run(np.concatenate([np.zeros((hops + 37, 1), np.float32), audio]))
    from_its_hop = run(np.concatenate([np.zeros((37, 1), np.float32), audio]))
    assert np.abs(muted_first[:hops]).max() < 1e-6  # (the model's first output, lined up, reaches back its latency)
    common = min(len(muted_first) - hops, len(from_its_hop))
    assert common > 30000 and np.abs(muted_first[hops:hops + common] - from_its_hop[:common]).max() < 1e-4


def test_a_muted_second_reaches_the_model_only_until_its_tail_has_played_out(noisy_audio):
    """Sound, a muted second, sound: the second stretch comes out as from a stream that starts on it with the
    memory the model had before the mute (its buffers silent), not with statistics dragged down by the zeros."""
    model = load_model("bands", "cpu")[0]
    before, after = noisy_audio[:16000, None], noisy_audio[16000:40000, None]

    def live(engine: StreamingDenoiser, stream: np.ndarray) -> np.ndarray:
        return np.concatenate([engine.process(stream[i:i + 160]) for i in range(0, len(stream), 160)])

    muted = live(StreamingDenoiser(model, 1), np.concatenate([before, np.zeros((16000, 1), np.float32), after]))
    remembered = StreamingDenoiser(model, 1)
    remembered.warm_up(before)  # the memory built on ``before``, the buffers silent
    expected = live(remembered, after)
    assert np.abs(muted[32000 - 1600:32000]).max() < 1e-6  # the tail has played out well before the sound
    assert np.abs(muted[32000:] - expected).max() < 1e-4


def test_a_dropout_leaves_the_level_statistics_where_they_were(noisy_audio):
    """50 ms of digital silence inside speech (a Bluetooth or network dropout) reaches the model, but its running
    level and noise-floor statistics go on from where they were before it: fed to them, the zeros drag the noise
    floor down by tens of dB, and it rises back at 5 dB/s."""
    model = load_model("bands", "cpu")[0]
    audio = noisy_audio[:, None]
    dropped = audio.copy()
    dropped[16000:16800] = 0.0

    def statistics(stream: np.ndarray) -> np.ndarray:
        engine = StreamingDenoiser(model, 1)
        for i in range(0, len(stream), 160):
            engine.process(stream[i:i + 160])
        return engine.state[3][0].numpy()

    kept, plain = statistics(dropped), statistics(audio)
    with torch.inference_mode():
        fed = model.step(torch.from_numpy(dropped[:, 0])[None], model.init_state(1, "cpu"))[1][3][0].numpy()
    assert np.abs(kept - plain).max() < 0.2  # log10 energies: 2 dB
    assert np.abs(fed - plain).max() > 1.0


@pytest.mark.parametrize("name", ["bands", "gru", "bands.onnx"])
def test_the_memory_put_back_after_a_dropout_is_what_memory_only_keeps(name):
    """``with_memory_of(now, before)``: ``before``'s memory entries (those ``memory_only`` keeps), ``now``'s buffers."""
    if name.endswith(".onnx"):
        pytest.importorskip("onnxruntime")
        from rtdenoise.portable.runtime_model import load_onnx_model
        model = load_onnx_model(name.removesuffix(".onnx"))[0]
    else:
        model = load_model(name, "cpu")[0]
    torch.manual_seed(0)
    now, before = (tuple(torch.randn_like(part) for part in model.init_state(1, "cpu")) for _ in range(2))
    kept = model.memory_only(before)
    for current, earlier, memory, result in zip(now, before, kept, model.with_memory_of(now, before)):
        assert torch.equal(result, earlier if torch.equal(memory, earlier) else current)
    kept_whole = [torch.equal(m, e) for m, e in zip(kept, before)]
    assert any(kept_whole) and not all(kept_whole)  # some memory, some buffers


def test_nan_and_inf_never_reach_the_state(noisy_audio):
    torch.manual_seed(0)
    model = build_preset("gru-small").eval()
    audio = noisy_audio[:16000, None].copy()
    audio[4000:4100] = np.nan
    audio[5000] = np.inf
    engine = StreamingDenoiser(model, channels=1, compensate_latency=True)
    out = np.concatenate([engine.process(audio), engine.flush()])
    assert np.isfinite(out).all()
    assert engine.nonfinite_samples == 101
    assert all(torch.isfinite(s).all() for s in engine.state)


def test_live_mode_delays_by_the_model_latency(noisy_audio):
    model = identity_gru()
    engine = StreamingDenoiser(model, channels=1)
    audio = noisy_audio[:8000, None]
    out = np.concatenate([engine.process(audio[i:i + 160]) for i in range(0, 8000, 160)])
    lat = model.latency_samples
    assert np.abs(out[lat:, 0] - audio[: len(out) - lat, 0]).max() < 1e-5
    assert engine.latency_ms == pytest.approx(20.0)


def test_chunk_must_be_a_hop_multiple():
    with pytest.raises(ValueError, match="multiple of hop"):
        StreamingDenoiser(build_preset("gru-small"), chunk_samples=100)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_stream_equals_cpu_offline(noisy_audio):
    torch.manual_seed(0)
    model = build_preset("gru-small").eval()
    audio = noisy_audio[:16000, None]
    cpu = run_offline(model, audio, 16000, 160)
    gpu = run_offline(model.to("cuda"), audio, 16000, 160)
    assert np.abs(cpu - gpu).max() < 1e-4



def fast_vs_eager(model, audio: np.ndarray, channels: int = 1) -> tuple[np.ndarray, np.ndarray, list]:
    """The same stream (warm-up, one-chunk blocks, a coalesced block, reset) with and without the fast path."""
    audio = np.repeat(audio[:, None], channels, axis=1) * np.linspace(1.0, 0.5, channels)[None].astype(np.float32)
    outputs, kernels = {}, []
    for fast in (True, False):
        engine = StreamingDenoiser(model, channels=channels, chunk_samples=160, coalesce=True, fast_path=fast)
        engine.warm_up(audio[:3200])
        first = [engine.process(audio[i:i + 160]) for i in range(0, 8000, 160)]
        mixed = engine.process(audio[8000:8517])  # three chunks in one eager step, then the fast path again
        rest = [engine.process(audio[i:i + 160]) for i in range(8517, len(audio) - 160, 160)]
        engine.reset()
        again = [engine.process(audio[i:i + 160]) for i in range(0, 3200, 160)]
        outputs[fast] = np.concatenate(first + [mixed] + rest + again)
        kernels.append(type(engine._fast).__name__)
    return outputs[True], outputs[False], kernels


@pytest.mark.parametrize("spec", [LAB_PRESET, MimoCNNSpec(taps=[8, 1, 3], features=[1, 4, 3, 1])])
@pytest.mark.parametrize("channels", [1, 2])
def test_cpu_cnn_kernel_equals_model_step(noisy_audio, spec, channels):
    torch.manual_seed(0)
    fast, eager, kernels = fast_vs_eager(MimoCNN(spec).eval(), noisy_audio[:12000], channels)
    assert kernels == ["NumpyFIRStep", "NoneType"]
    assert fast.shape == eager.shape and np.abs(eager).max() > 0.01
    assert np.abs(fast - eager).max() < 1e-5


@pytest.mark.parametrize("spec", [GRUSpec(hidden=32, layers=2), GRUSpec(hidden=16, layers=1, gain_floor=0.3)])
@pytest.mark.parametrize("channels", [1, 2])
def test_cpu_gru_kernel_equals_model_step(noisy_audio, spec, channels):
    torch.manual_seed(0)
    model = GRUDenoiser(spec).eval()
    torch.nn.init.normal_(model.decode.weight, std=0.3)
    torch.nn.init.normal_(model.decode.bias, std=2.0)  # gains spread over (0, 1), some below the floor
    fast, eager, kernels = fast_vs_eager(model, noisy_audio[:12000], channels)
    assert kernels == ["NumpyGRUStep", "NoneType"]
    assert np.abs(eager - noisy_audio[:len(eager), None]).max() > 0.01  # it does change the audio
    assert np.abs(fast - eager).max() < 1e-5


@pytest.mark.parametrize("spec", [BandSpec(hidden=32, bands=16), BandSpec(hidden=16, layers=1, df_order=2,
                                                                         gain_floor=0.2),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, min_gain=0.25),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True),
                                  BandSpec(hidden=16, layers=1, df_order=2, pitch=True, pitch_strength=0.3),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, lookahead=1),
                                  BandSpec(hidden=16, layers=1, df_order=2, lookahead=2),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, learned_comb=True),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, noise_floor=True),
                                  BandSpec(hidden=16, layers=1, df_order=2, noise_floor=True, lookahead=1),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, low_gain_exponent=3.0,
                                           min_gain=0.1),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, noise_floor=True,
                                           fine_hz=2000.0, fine_channels=4),
                                  BandSpec(hidden=16, bands=20, df_hz=0.0, pitch=True, noise_floor=True,
                                           across_channels=8),
                                  BandSpec(hidden=16, layers=1, df_order=2, across_channels=6, across_heads=3),
                                  BandSpec(hidden=16, layers=1, df_order=2, pitch=True, low_gain_exponent=3.0)])
@pytest.mark.parametrize("channels", [1, 2])
def test_cpu_band_kernel_equals_model_step(noisy_audio, spec, channels):
    torch.manual_seed(0)
    model = BandDenoiser(spec).eval()
    torch.nn.init.normal_(model.gain_head.weight, std=0.5)
    torch.nn.init.normal_(model.gain_head.bias, std=2.0)
    if model.df_bins:
        torch.nn.init.normal_(model.df_head.weight, std=0.05)  # the deep filter does something
    if spec.learned_comb:
        torch.nn.init.normal_(model.comb_head.weight, std=0.5)  # strengths differ by band and frame
    if model.fine_bins:
        wake_fine_path(model)
    if spec.across_channels:
        torch.nn.init.normal_(model.across_head.weight, std=0.5)  # it starts at zero: no change to check
    fast, eager, kernels = fast_vs_eager(model, noisy_audio[:12000], channels)
    assert kernels == ["NumpyBandStep", "NoneType"]
    assert np.abs(eager - noisy_audio[:len(eager), None]).max() > 0.01
    assert np.abs(fast - eager).max() < 1e-5


def wake_fine_path(model: BandDenoiser) -> None:
    """The fine path's output layers start at zero (no change): give them weights so a check can fail."""
    for layer in (model.fine_head, model.fine_bin_head):
        torch.nn.init.normal_(layer.weight, std=0.5)
        torch.nn.init.normal_(layer.bias, std=0.5)


def test_wave_gru_and_other_overlaps_take_the_plain_step():
    assert StreamingDenoiser(build_preset("gru-wave").eval(), chunk_samples=160)._fast_kind is None
    three_quarters = GRUDenoiser(GRUSpec(frame=512, hop=128, hidden=16, layers=1)).eval()
    assert StreamingDenoiser(three_quarters, chunk_samples=128)._fast_kind is None


def test_offline_blocks_run_through_the_cpu_gru_kernel(noisy_audio):
    """Coalesced offline blocks (many hops per call) give the same audio as the plain model."""
    model, _ = load_model("gru", "cpu")
    audio = noisy_audio[:24000, None]
    outputs = []
    for fast in (True, False):
        engine = StreamingDenoiser(model, chunk_samples=320, compensate_latency=True, coalesce=True,
                                   fast_path=fast)
        outputs.append(np.concatenate([engine.process(audio[:16000]), engine.process(audio[16000:]),
                                       engine.flush()]))
        assert (engine._fast is not None) == fast
    assert outputs[0].shape == audio.shape and np.abs(outputs[0] - audio).max() > 0.01
    assert np.abs(outputs[0] - outputs[1]).max() < 1e-5


@pytest.mark.parametrize("fast", [True, False])
def test_chunk_timings_stay_bounded_on_both_paths(fast):
    engine = StreamingDenoiser(build_preset("cnn-lab").eval(), chunk_samples=160, fast_path=fast)
    engine.max_timings = 40
    block = np.random.default_rng(0).normal(0, 0.01, (160, 1)).astype(np.float32)  # digital silence never runs it
    for _ in range(200):
        engine.process(block)
    assert (engine._fast is not None) == fast
    assert 20 <= len(engine.chunk_seconds) <= 40


def test_large_cnn_stays_with_torch_on_the_cpu():
    engine = StreamingDenoiser(build_preset("cnn-large").eval(), chunk_samples=160)
    assert engine._fast_kind is None  # its products would start OpenBLAS threads


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("preset", ["gru-small", "cnn-lab"])
def test_cuda_graph_equals_eager_across_reset_and_warm_up(noisy_audio, preset):
    torch.manual_seed(0)
    fast, eager, kernels = fast_vs_eager(build_preset(preset).eval().to("cuda"), noisy_audio[:12000])
    assert kernels == ["GraphedStep", "NoneType"]
    assert np.abs(fast - eager).max() < 1e-5


def _enhanced(engine: StreamingDenoiser, audio: np.ndarray, block: int) -> np.ndarray:
    pieces = [engine.process(audio[i:i + block]) for i in range(0, len(audio), block)]
    return np.concatenate(pieces + ([engine.flush()] if engine.compensate_latency else []))[:, 0]


@pytest.mark.parametrize("offline", [True, False])
def test_max_attenuation_mixes_the_lined_up_input_back_in(noisy_audio, offline):
    """out = (1 - a) * enhanced + a * input, with the input delayed like the model's output (live)."""
    model = load_model("gru", "cpu")[0]
    audio = noisy_audio[:24000, None]
    runs = {limit: _enhanced(StreamingDenoiser(model, compensate_latency=offline, coalesce=offline,
                                               max_attenuation_db=limit), audio, 160)
            for limit in (None, 12.0)}
    dry = audio[:, 0] if offline else np.concatenate([np.zeros(model.latency_samples, np.float32),
                                                       audio[:-model.latency_samples, 0]])
    a = 10 ** (-12 / 20)
    assert np.abs(runs[12.0] - ((1 - a) * runs[None] + a * dry)).max() < 1e-5
    assert np.abs(runs[12.0] - runs[None]).max() > 0.01


def test_max_attenuation_keeps_recorded_noise_within_the_limit():
    import soundfile as sf

    noise = sf.read("tests/data/noise_birds.wav", dtype="float32")[0][:, None]
    model = load_model("gru", "cpu")[0]

    def reduction_db(limit: float | None) -> float:
        out = _enhanced(StreamingDenoiser(model, compensate_latency=True, coalesce=True, max_attenuation_db=limit),
                        noise, 16000)
        return float(20 * np.log10(np.sqrt(np.mean(out ** 2)) / np.sqrt(np.mean(noise ** 2))))

    assert reduction_db(None) < -15  # the model alone removes most of this noise
    assert -12 <= reduction_db(12.0) < -6
    assert -6 <= reduction_db(6.0) < -3


def test_max_attenuation_can_change_mid_stream_and_rejects_nonsense(noisy_audio):
    model = load_model("gru", "cpu")[0]
    audio = noisy_audio[:8000, None]
    plain, limited = StreamingDenoiser(model), StreamingDenoiser(model, max_attenuation_db=20)
    first = [engine.process(audio[:4000]) for engine in (plain, limited)]
    assert not np.allclose(first[0], first[1])
    limited.set_max_attenuation(None)
    second = [engine.process(audio[4000:]) for engine in (plain, limited)]
    assert np.array_equal(second[0], second[1])  # same model state: the limit only mixes the output
    for nonsense in (0.0, -3.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max-attenuation"):
            limited.set_max_attenuation(nonsense)


@pytest.mark.parametrize("name", ["gru", "cnn-lab", "cnn-large"])
def test_shipped_models_keep_the_polarity_of_recorded_speech(noisy_audio, name):
    """An inverted output scores the same on every metric, but it cancels against the input in the
    attenuation limit's mix (and in any A/B or sum with the original)."""
    model = load_model(name, "cpu")[0]
    out = _enhanced(StreamingDenoiser(model, compensate_latency=True, coalesce=True), noisy_audio[:, None], 16000)
    assert float(np.corrcoef(out, noisy_audio)[0, 1]) > 0.5


def test_live_blocks_come_back_as_the_readme_says():
    """16 kHz: a block per block from the first call; 48 kHz: the first call may return less (even nothing),
    every later one a block, and the total never lags by more than the resampler's hold plus one block."""
    model, _ = load_model("bands", "cpu")
    for rate in (16000, 48000):
        live = StreamingDenoiser(model, channels=1, sample_rate=rate)
        block = rate // 100
        sizes = [live.process(np.zeros((block, 1), np.float32)).shape[0] for _ in range(8)]
        if rate == 16000:
            assert sizes == [block] * 8
        else:
            assert sizes[0] < block and sizes[2:] == [block] * 6, sizes
            assert 8 * block - sum(sizes) <= block + 60, sizes
