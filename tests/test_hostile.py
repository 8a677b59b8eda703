"""Hostile input, round two: never louder than the input, never a poisoned state, no orphans, no tracebacks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtdenoise.files.audio_io import NAME_MAX, partial_path
from rtdenoise.engine import INPUT_LIMIT, OUTPUT_MARGIN, StreamingDenoiser, load_model
from rtdenoise.models import list_pretrained
from rtdenoise.models.registry import CheckpointError, load_checkpoint, read_checkpoint


def ten_ms(model) -> int:
    """A 10 ms chunk in whole hops (the CNNs' hop is one sample: stepping them sample by sample is slow)."""
    return model.hop * max(1, model.sample_rate // 100 // model.hop)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtdenoise", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def huge_burst_file(tmp_path_factory, noisy_audio) -> Path:
    """Recorded noisy speech with a burst of finite 1e20 samples (a float WAV)."""
    audio = noisy_audio[: 3 * 16000].astype(np.float32).copy()
    audio[8000:8400] = 1e20
    path = tmp_path_factory.mktemp("huge") / "huge.wav"
    sf.write(str(path), audio, 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("name", list_pretrained())
@pytest.mark.parametrize("fast_path", [True, False])
def test_a_burst_of_huge_finite_samples_never_poisons_the_state(name, fast_path, noisy_audio):
    model, _ = load_model(name, "cpu")
    engine = StreamingDenoiser(model, fast_path=fast_path, chunk_samples=ten_ms(model))
    audio = noisy_audio[: 4 * 16000].astype(np.float32)
    blocks = [audio[i:i + 800, None] for i in range(0, len(audio), 800)]
    blocks[4] = np.full((800, 1), 1e20, np.float32)
    out = np.concatenate([engine.process(b) for b in blocks])
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= OUTPUT_MARGIN * INPUT_LIMIT + 1e-6
    assert engine.clipped_samples == 800
    # two seconds after the burst the output is what it would have been without it (state recovered;
    # the band model's level normalisation forgets with a 1 s time constant)
    clean_engine = StreamingDenoiser(model, fast_path=fast_path, chunk_samples=ten_ms(model))
    reference = np.concatenate([clean_engine.process(b if i != 4 else np.zeros_like(b))
                                for i, b in enumerate(blocks)])
    later = slice(2 * 16000 + 16000 // 4, None)
    assert np.abs(out[later] - reference[later]).max() < 0.05 * np.abs(reference[later]).max() + 1e-4


def test_the_huge_file_through_the_cli_gives_a_finite_file_and_says_so(tmp_path, huge_burst_file):
    result = run_cli("denoise", str(huge_burst_file), "-o", str(tmp_path / "out.flac"), "--quiet")
    assert result.returncode == 0, result.stderr
    out, _ = sf.read(str(tmp_path / "out.flac"))
    assert np.isfinite(out).all() and len(out) == 3 * 16000
    assert np.abs(out[16000:]).max() < 0.5  # the rest of the file is speech again, not silence or noise
    assert np.abs(out[16000:]).max() > 1e-3
    assert "clipped before the model" in result.stderr


def test_a_checkpoint_with_one_nan_weight_is_refused(tmp_path):
    from rtdenoise.models.registry import resolve_model_path

    checkpoint = read_checkpoint(resolve_model_path("gru"))
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name] = checkpoint["state_dict"][name].clone()
    checkpoint["state_dict"][name].view(-1)[0] = float("nan")
    path = tmp_path / "damaged.pt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="damaged weights"):
        load_checkpoint(path)
    result = run_cli("denoise", str(Path(__file__).parent / "data" / "speech_noisy.wav"), "-o",
                     str(tmp_path / "out.wav"), "--model", str(path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "damaged weights" in result.stderr and not (tmp_path / "out.wav").exists()


def test_a_state_gone_non_finite_is_reset_and_counted(noisy_audio):
    model, _ = load_model("gru", "cpu")
    engine = StreamingDenoiser(model, fast_path=False)
    engine.process(noisy_audio[:1600, None].astype(np.float32))
    engine.state = tuple(torch.full_like(s, float("nan")) for s in engine.state)  # a fault, however caused
    out = np.concatenate([engine.process(noisy_audio[i:i + 160, None].astype(np.float32))
                          for i in range(1600, 16000, 160)])
    assert np.isfinite(out).all() and engine.state_resets == 1
    assert np.abs(out[-8000:]).max() > 1e-3  # it kept going


@pytest.mark.parametrize("dtype,scale", [(np.int16, 32768), (np.int32, 2 ** 31), (np.uint8, None)])
def test_integer_pcm_blocks_are_scaled_like_soundfile_reads_them(dtype, scale, noisy_audio):
    model, _ = load_model("gru", "cpu")
    audio = (noisy_audio[:8000] * 0.5).astype(np.float32)
    if scale is None:
        pcm = np.clip(np.round(audio * 128 + 128), 0, 255).astype(np.uint8)
        dequantised = (pcm.astype(np.float32) - 128) / 128
    else:
        pcm = np.round(audio * (scale - 1)).astype(dtype)
        dequantised = (pcm / scale).astype(np.float32)
    as_float = StreamingDenoiser(model).process(dequantised[:, None])
    as_int = StreamingDenoiser(model).process(pcm[:, None])
    assert np.abs(as_int).max() <= 2 * np.abs(audio).max()
    assert np.abs(as_int - as_float).max() < 1e-5


def test_sample_rates_nobody_can_have_are_one_line(tmp_path):
    path = tmp_path / "rate.wav"
    sf.write(str(path), np.zeros(1000, np.int16), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = (2 ** 31 - 1).to_bytes(4, "little")  # the header's sample rate
    path.write_bytes(bytes(data))
    result = run_cli("denoise", str(path), "-o", str(tmp_path / "out.wav"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "sample rate 2147483647 Hz" in result.stderr
    with pytest.raises(ValueError, match="not supported"):
        StreamingDenoiser(load_model("gru", "cpu")[0], sample_rate=2 ** 31 - 1)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
@pytest.mark.parametrize("option", ["--chunk-ms", "--max-attenuation"])
def test_numeric_options_refuse_inf_and_nan_in_one_line(tmp_path, value, option):
    result = run_cli("denoise", str(Path(__file__).parent / "data" / "speech_noisy.wav"), "-o",
                     str(tmp_path / "out.wav"), f"{option}={value}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rtdenoise: error: argument {option}: expected a finite number")


def test_a_250_byte_output_name_is_written(tmp_path):
    name = "n" * (250 - len(".wav")) + ".wav"
    assert len(partial_path(tmp_path / name).name.encode()) <= NAME_MAX
    result = run_cli("denoise", str(Path(__file__).parent / "data" / "speech_noisy.wav"), "-o",
                     str(tmp_path / name), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / name).is_file() and [p.name for p in tmp_path.iterdir()] == [name]


def test_stale_partials_of_a_killed_run_are_removed_by_the_next(tmp_path):
    target = tmp_path / "out.wav"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = partial_path(target, dead.pid)
    stale.write_bytes(b"half a file")
    foreign = tmp_path / ".someone-else.wav.123.partial"
    foreign.write_bytes(b"not ours")
    result = run_cli("denoise", str(Path(__file__).parent / "data" / "speech_noisy.wav"), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and foreign.exists() and target.is_file()


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path, noisy_audio):
    from rtdenoise.files.offline import denoise_file

    model, _ = load_model("gru", "cpu")
    source = tmp_path / "in.wav"
    sf.write(str(source), noisy_audio[:16000 * 3], 16000)
    target = tmp_path / "out.wav"

    def someone_else_writes(seconds: float) -> None:
        if not target.exists():
            target.write_bytes(b"the other process's result")

    with pytest.raises(Exception, match="appeared while this was written"):
        denoise_file(source, target, model, progress=someone_else_writes, overwrite=False)
    assert target.read_bytes() == b"the other process's result"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_errors_name_the_output_not_the_hidden_partial(tmp_path):
    target = tmp_path / ("n" * 300 + ".wav")  # longer than NAME_MAX: no file can have this name
    result = run_cli("denoise", str(Path(__file__).parent / "data" / "speech_noisy.wav"), "-o", str(target))
    assert result.returncode == 2 and ".partial" not in result.stderr
    assert str(target) in result.stderr and "too long" in result.stderr


def test_a_symlink_loop_is_named_as_such(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    result = run_cli("denoise", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out.wav"))
    assert result.returncode == 2 and "symbolic links" in result.stderr


@pytest.mark.slow
def test_workers_die_with_a_killed_parent_and_leave_no_partials(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        sf.write(str(folder / f"f{index}.wav"), (rng.standard_normal(16000 * 600) * 0.05).astype(np.float32), 16000)
    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-m", "rtdenoise", "denoise", str(folder), "-o", str(out),
                               "--jobs", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".*.partial")):
        time.sleep(0.2)
    workers = [int(p.name.rsplit(".", 2)[-2]) for p in out.glob(".*.partial")]
    assert workers, "the workers never started writing"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    assert not list(out.glob(".*.partial"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has finished: it is only waiting to be reaped
        return stat.read().split(")")[-1].split()[0] != "Z"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_any_blocks_any_amplitude_any_dtype_stay_finite_bounded_and_recover(data):
    """Random block sizes, amplitudes from 0 to 1e30, NaN/inf runs and dtypes, for every shipped model."""
    name = data.draw(st.sampled_from(list_pretrained()))
    model, _ = _cached_model(name)
    engine = StreamingDenoiser(model, fast_path=data.draw(st.booleans()), chunk_samples=ten_ms(model))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    for _ in range(data.draw(st.integers(1, 8))):
        size = data.draw(st.integers(1, 2000))
        amplitude = 10.0 ** data.draw(st.floats(-6, 30))
        block = rng.standard_normal((size, 1)) * amplitude
        if data.draw(st.booleans()):
            start = data.draw(st.integers(0, size - 1))
            block[start:start + data.draw(st.integers(1, 50))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int16]))
        if dtype is np.int16:
            block = np.clip(np.nan_to_num(block / amplitude * 8000), -32768, 32767).astype(np.int16)
            peak = np.abs(block).max() / 32768
        else:
            block = block.astype(dtype)
            finite = block[np.isfinite(block)]
            peak = min(float(np.abs(finite).max()) if finite.size else 0.0, INPUT_LIMIT)
        out = engine.process(block)
        assert np.isfinite(out).all()
        assert np.abs(out).max(initial=0) <= OUTPUT_MARGIN * max(peak, INPUT_LIMIT) + 1e-5
    # recovery: one second of ordinary audio after all that gives ordinary output
    calm = (rng.standard_normal((16000, 1)) * 0.05).astype(np.float32)
    out = engine.process(calm)
    assert np.isfinite(out).all() and np.abs(out[8000:]).max() <= OUTPUT_MARGIN * np.abs(calm).max()


_MODELS: dict = {}


def _cached_model(name: str):
    if name not in _MODELS:
        _MODELS[name] = load_model(name, "cpu")
    return _MODELS[name]


def test_meters_read_any_level():
    pytest.importorskip("PySide6")
    from rtdenoise.app.main_window import meter_value

    assert meter_value(float("inf")) == 0 and meter_value(float("nan")) == -60 and meter_value(1e20) == 0
    assert meter_value(0.0) == -60 and meter_value(0.1) == -20


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_the_app_ends_on_sigterm_and_sigint_as_its_close_button_does(tmp_path, number, huge_burst_file):
    pytest.importorskip("PySide6")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.Popen([sys.executable, "-m", "rtdenoise", "gui", "--input", str(huge_burst_file),
                            "--no-output"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # the window is up and playing (the file has a 1e20 burst: no meter may choke on it)
    assert app.poll() is None
    app.send_signal(number)
    try:
        _, stderr = app.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        app.kill()
        pytest.fail(f"the app ignored signal {number}")
    assert app.returncode == 0 and "Traceback" not in stderr
