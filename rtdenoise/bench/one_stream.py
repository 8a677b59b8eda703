"""``rtdenoise bench``: real-time factor, per-chunk times, latency, parameters, memory.

Every figure is measured here, now, on this machine; medians over ``repeats`` runs.
"""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from rtdenoise.engine import StreamingDenoiser, load_model
from rtdenoise.files.offline import chunk_samples_for
from rtdenoise.models import list_pretrained


SAMPLE = Path(__file__).parent.parent / "samples" / "noisy_speech.wav"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_audio(seconds: float, rate: int) -> np.ndarray:
    import soundfile as sf

    audio, file_rate = sf.read(str(SAMPLE), dtype="float32", always_2d=True)
    assert file_rate == rate, "the bundled sample is 16 kHz"
    reps = int(np.ceil(seconds * rate / len(audio)))
    return np.tile(audio, (reps, 1))[: int(seconds * rate)]


def _chunk_stats(seconds: list[float]) -> dict:
    times = 1000 * np.asarray(seconds)
    return {"chunk_median_ms": float(np.median(times)), "chunk_p99_ms": float(np.percentile(times, 99)),
            "chunk_max_ms": float(times.max())}


def measure_streaming(model, audio: np.ndarray, chunk_samples: int, fast_path: bool = True,
                      rate: int | None = None) -> dict:
    """Feed one chunk at a time, as the live path does; time every chunk (resampling and high band included)."""
    rate = rate or model.sample_rate
    engine = StreamingDenoiser(model, channels=1, sample_rate=rate, chunk_samples=chunk_samples, fast_path=fast_path)
    block = round(chunk_samples * rate / model.sample_rate)
    engine.process(audio[: block * 20])  # warm-up (allocations, kernels)
    engine.reset()
    if model._device().type == "cuda":
        torch.cuda.synchronize()
    times = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(audio) - block + 1, block):
        began = time.perf_counter()
        engine.process(audio[start:start + block])
        times.append(time.perf_counter() - began)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    duration = len(audio) / rate
    return {"rtf": wall / duration, "cpu_rtf": cpu / duration, **_chunk_stats(times)}


def measure_paced(model, audio: np.ndarray, chunk_samples: int, seconds: float, fast_path: bool = True) -> dict:
    """Feed one chunk per chunk duration, as a sound card does; time every step.

    Between chunks the machine does other work, so caches (and on a VM, the
    host's neighbours) have moved on: this is the per-chunk cost the live path
    sees, usually well above the back-to-back figure of :func:`measure_streaming`.
    """
    engine = StreamingDenoiser(model, channels=1, chunk_samples=chunk_samples, fast_path=fast_path)
    engine.process(audio[: chunk_samples * 20])
    engine.reset()
    period = chunk_samples / model.sample_rate
    count = min(len(audio) // chunk_samples, int(seconds / period))
    start, late = time.perf_counter(), 0
    for index in range(count):
        arrives = start + index * period  # a sound card hands over chunk i then; it is due one period later
        time.sleep(max(0.0, arrives - time.perf_counter()))
        engine.process(audio[index * chunk_samples:(index + 1) * chunk_samples])
        late += time.perf_counter() > arrives + period
    return {"rtf": sum(engine.chunk_seconds) / (count * period), **_chunk_stats(engine.chunk_seconds),
            "late_chunks": late, "chunks": count}


def measure_offline(model, audio: np.ndarray, fast_path: bool = True, rate: int | None = None) -> dict:
    """The offline command's path: 1 s blocks, chunks coalesced, latency compensated."""
    rate = rate or model.sample_rate
    engine = StreamingDenoiser(model, channels=1, sample_rate=rate, compensate_latency=True, coalesce=True,
                               fast_path=fast_path)
    block = rate
    started = time.perf_counter()
    for start in range(0, len(audio), block):
        engine.process(audio[start:start + block])
    engine.flush()
    wall = time.perf_counter() - started
    return {"rtf": wall / (len(audio) / rate)}


BENCH_BACKENDS = {"kernel": "the engine's fast path: numpy kernels on the CPU, a CUDA graph on a GPU (the default)",
                  "torch": "plain torch model.step per chunk",
                  "onnx": "the exported graph in onnxruntime, one thread (--backend onnx)"}


def _onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def run_bench(models: list[str] | None, device: str, threads: int, chunk_ms: float, seconds: float,
              repeats: int, fast_path: bool = True, paced_seconds: float = 5.0, rate: int | None = None,
              backends: list[str] | None = None) -> dict:
    """Measure each model under each backend (``BENCH_BACKENDS``; default: the kernel, or plain torch
    without ``fast_path``); rows are named ``model`` or, with several backends, ``model [backend]``."""
    torch.set_num_threads(threads)
    names = models or list_pretrained()
    backends = backends or ["kernel" if fast_path else "torch"]
    report = {"machine": {"cpu": _cpu_name(), "torch_threads": threads, "torch": torch.__version__,
                          "onnxruntime": _onnxruntime_version() if "onnx" in backends else None,
                          "device": device, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
                          "python": platform.python_version()},
              "settings": {"chunk_ms": chunk_ms, "seconds": seconds, "repeats": repeats,
                           "fast_path": fast_path, "paced_seconds": paced_seconds, "rate": rate,
                           "backends": backends}, "models": {}}
    for name in names:
        for backend in backends:
            label = name if len(backends) == 1 else f"{name} [{backend}]"
            report["models"][label] = _bench_model(name, backend, device, chunk_ms, seconds, repeats, paced_seconds,
                                                   rate)
    return report


def _bench_model(name: str, backend: str, device: str, chunk_ms: float, seconds: float, repeats: int,
                 paced_seconds: float, rate: int | None) -> dict:
    """One model under one backend: streaming, offline and paced figures."""
    if backend not in BENCH_BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (use {', '.join(BENCH_BACKENDS)})")
    fast_path = backend == "kernel"
    model, _ = load_model(name, device, "onnx" if backend == "onnx" else "torch")
    audio = bench_audio(seconds, model.sample_rate)
    stream_audio = audio if not rate or rate == model.sample_rate else \
        resample_poly(audio, rate, model.sample_rate, axis=0).astype(np.float32)
    chunk = chunk_samples_for(model, chunk_ms)
    _reset_peak_rss()
    streaming = [measure_streaming(model, stream_audio, chunk, fast_path, rate) for _ in range(repeats)]
    offline = [measure_offline(model, stream_audio, fast_path, rate) for _ in range(repeats)]
    paced = measure_paced(model, audio, chunk, paced_seconds, fast_path) if paced_seconds > 0 else None
    entry = {
        "parameters": model.num_parameters(),
        "chunk_ms": 1000 * chunk / model.sample_rate,
        "algorithmic_latency_ms": 1000 * (model.latency_samples + chunk) / model.sample_rate,
        "model_latency_ms": 1000 * model.latency_samples / model.sample_rate,
        "streaming": {k: statistics.median(r[k] for r in streaming) for k in streaming[0]},
        "paced": paced,
        "offline": {"rtf": statistics.median(r["rtf"] for r in offline),
                    "hour_of_audio_s": 3600 * statistics.median(r["rtf"] for r in offline)},
        "peak_rss_mb": _peak_rss_mb(),
        "runs_rtf": [round(r["rtf"], 5) for r in streaming],
        "runs_cpu_rtf": [round(r["cpu_rtf"], 5) for r in streaming],
    }
    if device.startswith("cuda"):
        entry["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    entry["backend"] = backend
    return entry


def print_report(report: dict) -> str:
    m = report["machine"]
    width = max([14] + [len(name) + 2 for name in report["models"]])
    lines = [f"machine: {m['cpu']}, {m['torch_threads']} torch thread(s), torch {m['torch']}, device {m['device']}"
             + (f" ({m['gpu']})" if m["gpu"] else "") + (f", onnxruntime {m['onnxruntime']}" if m.get("onnxruntime")
                                                          else ""),
             f"{report['settings']['seconds']:.0f} s of audio per run, median of {report['settings']['repeats']} runs"
             + (f", streams at {report['settings']['rate']} Hz (resampling and the high band included)"
                if report["settings"].get("rate") else ""),
             "",
             f"{'model':<{width}}{'params':>10}{'latency':>9}{'chunk':>7}{'RTF':>8}{'CPU RTF':>9}{'median':>9}{'p99':>8}"
             f"{'max':>8}{'offline RTF':>13}{'1 h audio':>11}{'peak RSS':>10}",
             f"{'':<{width}}{'':>10}{'ms':>9}{'ms':>7}{'stream':>8}{'stream':>9}{'ms':>9}{'ms':>8}{'ms':>8}{'':>13}"
             f"{'s':>11}{'MB':>10}"]
    for name, e in report["models"].items():
        s = e["streaming"]
        lines.append(f"{name:<{width}}{e['parameters']:>10,}{e['algorithmic_latency_ms']:>9.1f}{e['chunk_ms']:>7.1f}"
                     f"{s['rtf']:>8.4f}{s['cpu_rtf']:>9.4f}{s['chunk_median_ms']:>9.3f}{s['chunk_p99_ms']:>8.3f}"
                     f"{s['chunk_max_ms']:>8.2f}"
                     f"{e['offline']['rtf']:>13.5f}{e['offline']['hour_of_audio_s']:>11.1f}{e['peak_rss_mb']:>10.0f}")
        if e.get("paced"):
            q = e["paced"]
            lines.append(f"{'  paced':<{width}}{'':>10}{'':>9}{'':>7}{q['rtf']:>8.4f}{'':>9}{q['chunk_median_ms']:>9.3f}"
                         f"{q['chunk_p99_ms']:>8.3f}{q['chunk_max_ms']:>8.2f}   late {q['late_chunks']}/{q['chunks']}")
    backends = report["settings"].get("backends") or []
    lines += ["", "stream: chunks fed back to back; paced: one chunk per chunk duration, as a sound card feeds them",
              "CPU RTF: the process's CPU time over the audio's duration (what the denoiser costs; unlike wall time,",
              "it leaves out time the process waited for a busy or shared machine)"]
    lines += [f"{backend}: {BENCH_BACKENDS[backend]}" for backend in backends if len(backends) > 1]
    return "\n".join(lines)
