"""Bad and unusual input, interruption, parallel jobs, long files, and engine properties."""
from __future__ import annotations

import shutil
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

from rtdenoise.cli import main
from rtdenoise.engine import StreamingDenoiser
from rtdenoise.models.registry import build_preset


@pytest.fixture(scope="module")
def model_path(small_model_path) -> str:
    return small_model_path


def denoise(source: Path, target: Path, model_path: str, *extra: str) -> int:
    return main(["denoise", str(source), "-o", str(target), "--model", model_path, "--quiet", *extra])


def test_nan_and_inf_samples_are_zeroed_and_reported(tmp_path, noisy_audio, model_path, capsys):
    audio = noisy_audio[:16000].copy()
    audio[1000:1200] = np.nan
    audio[5000] = np.inf
    source = tmp_path / "nan.wav"
    sf.write(str(source), audio, 16000, subtype="FLOAT")
    assert denoise(source, tmp_path / "out.wav", model_path) == 0
    out = sf.read(str(tmp_path / "out.wav"))[0]
    assert np.isfinite(out).all() and len(out) == 16000
    assert "201 NaN/Inf samples" in capsys.readouterr().err
    # The state was not poisoned: the end of the file still carries the speech.
    assert np.abs(out[8000:]).max() > 0.01


@pytest.mark.parametrize("kind", ["clipped", "dc offset", "silence"])
def test_unusual_but_valid_audio(tmp_path, noisy_audio, model_path, kind):
    audio = noisy_audio[:16000].copy()
    if kind == "clipped":
        audio = np.clip(audio * 50, -1, 1)
    elif kind == "dc offset":
        audio = audio + 0.3
    else:
        audio = audio * 0
    source = tmp_path / "in.wav"
    sf.write(str(source), audio, 16000, subtype="PCM_16")
    assert denoise(source, tmp_path / "out.wav", model_path) == 0
    out = sf.read(str(tmp_path / "out.wav"))[0]
    assert len(out) == 16000 and np.isfinite(out).all() and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("rate,channels,frames", [(96000, 1, 48000), (192000, 2, 96000), (16000, 1, 50),
                                                  (8000, 1, 1), (16000, 8, 8000), (22050, 6, 3000)])
def test_extreme_rates_short_clips_many_channels(tmp_path, model_path, rate, channels, frames):
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((frames, channels)) * 0.1).astype(np.float32)
    source = tmp_path / "in.flac"
    sf.write(str(source), audio, rate, subtype="PCM_24")
    assert denoise(source, tmp_path / "out.flac", model_path) == 0
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, channels, frames, "PCM_24")


def test_file_still_being_written_is_handled(tmp_path, noisy_audio, model_path, capsys):
    source = tmp_path / "growing.wav"
    writer = sf.SoundFile(str(source), "w", samplerate=16000, channels=1, subtype="PCM_16")
    writer.write(noisy_audio[:16000])
    writer.flush()  # header not finalised yet: the writer is still going
    try:
        code = denoise(source, tmp_path / "out.wav", model_path)
        err = capsys.readouterr().err
        if code == 0:  # what is there gets processed, whole
            assert sf.info(str(tmp_path / "out.wav")).frames == sf.info(str(source)).frames
        else:
            assert "growing.wav" in err and len(err.strip().splitlines()) == 1
    finally:
        writer.close()
    assert not list(tmp_path.glob(".*partial"))


def test_parallel_jobs_give_the_same_outputs(tmp_path, noisy_path, model_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(4):
        shutil.copy(noisy_path, inputs / f"f{index}.wav")
    assert main(["denoise", str(inputs), "-o", str(tmp_path / "one"), "--model", model_path, "--quiet"]) == 0
    assert main(["denoise", str(inputs), "-o", str(tmp_path / "two"), "--model", model_path, "--quiet",
                 "--jobs", "2"]) == 0
    for index in range(4):
        a = sf.read(str(tmp_path / "one" / f"f{index}.wav"), dtype="int16")[0]
        b = sf.read(str(tmp_path / "two" / f"f{index}.wav"), dtype="int16")[0]
        assert np.array_equal(a, b)


def test_parallel_progress_moves_while_files_are_running(tmp_path, noisy_audio):
    """With --jobs 2 the bar advances block by block, not only when a whole file ends; it adds up."""
    from rtdenoise.files.batch import denoise_many

    pairs = []
    for index in range(2):
        source = tmp_path / f"f{index}.wav"
        # 8 minutes each: even an idle machine (some 500 s of audio a second on two workers) needs several
        # progress polls (0.25 s apart) per file
        sf.write(str(source), np.tile(noisy_audio, 96), 16000, subtype="PCM_16")
        pairs.append((source, tmp_path / "out" / source.name))
    steps: list[float] = []
    finished: list[Path] = []
    denoise_many(pairs, None, "gru", "cpu", None, 2, on_file=lambda s, t, summary: finished.append(t),
                 on_progress=steps.append)
    assert sorted(finished) == sorted(t for _, t in pairs)
    assert sum(steps) == pytest.approx(960.0, abs=1e-6)
    assert max(steps) < 480.0  # never a whole file's eight minutes at once


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_interrupting_a_folder_keeps_finished_files_and_no_partials(tmp_path, noisy_audio, jobs):
    inputs = tmp_path / "in"
    inputs.mkdir()
    long = np.tile(noisy_audio, 24)  # 2 minutes each
    for index in range(6):
        sf.write(str(inputs / f"f{index}.wav"), long, 16000, subtype="PCM_16")
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "rtdenoise", "denoise", str(inputs), "-o", str(out),
                                "--model", "cnn-lab", "--jobs", jobs, "--quiet"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and any(p.suffix == ".wav" and not p.name.startswith(".")
                                                                        for p in out.iterdir())):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    finished = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert finished, "nothing finished before the signal"
    for path in finished:
        assert sf.info(str(path)).frames == len(long)  # complete, readable
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial files left
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before  # inputs untouched


def test_a_signal_in_a_worker_stops_it_between_blocks_without_a_partial(tmp_path, noisy_audio, monkeypatch):
    """A real SIGTERM only sets the worker's flag; the file in progress stops at the next block."""
    import multiprocessing
    import os
    import threading

    from rtdenoise.files import batch
    from rtdenoise.engine import load_model

    source = tmp_path / "long.wav"
    sf.write(str(source), np.tile(noisy_audio, 24), 16000, subtype="PCM_16")  # 2 minutes, seconds of work
    monkeypatch.setattr(batch, "_worker_model", load_model("gru", "cpu")[0])
    monkeypatch.setattr(batch, "_worker_seconds_done", multiprocessing.Value("d", 0.0))
    monkeypatch.setattr(batch, "_stop_requested", False)
    previous = signal.signal(signal.SIGTERM, batch._request_stop)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            batch._denoise_in_worker(str(source), str(tmp_path / "out.wav"), None, None, False)
        assert time.monotonic() - started < 3.0  # stopped near the signal, not at the end of the file
        with pytest.raises(KeyboardInterrupt):  # a task taken after the signal does not start
            batch._denoise_in_worker(str(source), str(tmp_path / "next.wav"), None, None, False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]  # no output, no partial file


def test_a_write_that_fails_midway_is_one_line_and_leaves_nothing(tmp_path, noisy_path):
    """A real failing write (the file-size limit, EFBIG): exit 2, the file named, no partial output."""
    code = ("import resource, signal, sys; from rtdenoise.cli import main; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000)); sys.exit(main(sys.argv[1:]))")
    target = tmp_path / "out" / "clean.wav"
    result = subprocess.run([sys.executable, "-c", code, "denoise", str(noisy_path), "-o", str(target),
                             "--model", "cnn-lab", "--quiet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and "writing failed" in lines[0], result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_is_named_as_such(tmp_path, noisy_path):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        result = subprocess.run([sys.executable, "-m", "rtdenoise", "denoise", str(noisy_path), "-o",
                                 str(small / "clean.wav"), "--model", "cnn-lab", "--quiet"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "no space left on the disk" in result.stderr and "Traceback" not in result.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_long_file(tmp_path, noisy_audio):
    """Peak RSS for 10 minutes of audio is close to that for 20 seconds (blocks, not the file)."""
    def peak_rss_mb(seconds: int) -> float:
        source = tmp_path / f"long{seconds}.wav"
        sf.write(str(source), np.tile(noisy_audio, seconds // 5 + 1)[: seconds * 16000], 16000, subtype="PCM_16")
        code = ("import resource, sys; from rtdenoise.cli import main; rc = main(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        result = subprocess.run([sys.executable, "-c", code, "denoise", str(source), "-o", str(tmp_path / "o.wav"),
                                 "--model", "cnn-lab", "--quiet", "--overwrite"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip().splitlines()[-1]) / 1024

    short, long = peak_rss_mb(20), peak_rss_mb(600)
    assert long - short < 40, f"peak RSS grew from {short:.0f} MB to {long:.0f} MB"  # the file is 19 MB as PCM


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]), channels=st.integers(1, 3),
       frames=st.integers(1, 6000), blocks=st.lists(st.integers(1, 2000), min_size=1, max_size=8),
       seed=st.integers(0, 2 ** 16))
def test_engine_properties(rate, channels, frames, blocks, seed):
    """Any rate, channel count and block pattern: length in == length out, and blocks don't matter."""
    torch.manual_seed(seed % 7)
    model = build_preset("gru-small").eval()
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((frames, channels)) * 0.1).astype(np.float32)

    def run(sizes):
        engine = StreamingDenoiser(model, channels, rate, compensate_latency=True)
        pieces, start, index = [], 0, 0
        while start < frames:
            size = sizes[index % len(sizes)]
            pieces.append(engine.process(audio[start:start + size]))
            start, index = start + size, index + 1
        return np.concatenate(pieces + [engine.flush()])

    streamed, whole = run(blocks), run([frames])
    assert streamed.shape == whole.shape == audio.shape
    assert np.abs(streamed - whole).max() < 1e-5
