"""``rtdenoise bench --streams N`` / ``--max-streams``: concurrent real-time streams of one model.

All streams are stepped together, one batch per hop (:class:`MultiStreamEngine`);
a count is real time when the 99th percentile of the time one hop of all streams
takes stays under the hop's duration.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from rtdenoise.engine.streams import MultiStreamEngine

from .one_stream import bench_audio


WARMUP_HOPS = 20


def measure_streams(model, count: int, device: str, hops: int = 300) -> dict:
    """Hop times for ``count`` streams of recorded speech at different offsets (the batched step, audio in
    and out of the engine included; the caller's own gathering of audio is not)."""
    engine = MultiStreamEngine(model, device)
    audio = bench_audio(max(10.0, hops * model.hop / model.sample_rate + 1), model.sample_rate)[:, 0]
    usable = len(audio) - (hops + WARMUP_HOPS) * model.hop
    offsets = np.random.default_rng(0).integers(0, max(1, usable), size=count)
    for stream in range(count):
        engine.join(stream)
    order = np.asarray(engine.streams)
    index = offsets[order][:, None] + np.arange(model.hop)[None]
    times = []
    for t in range(hops + WARMUP_HOPS):
        rows = audio[index + t * model.hop]
        started = time.perf_counter()
        engine.step_rows(rows)
        if t >= WARMUP_HOPS:
            times.append(time.perf_counter() - started)
    hop_ms = 1000 * model.hop / model.sample_rate
    ms = 1000 * np.asarray(times)
    p99 = float(np.percentile(ms, 99))
    return {"streams": count, "rows": engine.capacity, "hop_ms": hop_ms, "median_ms": float(np.median(ms)),
            "p99_ms": p99, "max_ms": float(ms.max()), "load": p99 / hop_ms, "real_time": p99 < hop_ms}


def search_max_streams(model, device: str, limit: int, hops: int = 300) -> tuple[int, list[dict]]:
    """The largest count up to ``limit`` that stays real time: doubling, then bisection."""
    trials: list[dict] = []

    def fits(count: int) -> bool:
        trials.append(measure_streams(model, count, device, hops))
        return trials[-1]["real_time"]

    low, high = 0, 1
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > max(1, low // 50):  # to within 2 %
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low, sorted(trials, key=lambda r: r["streams"])


def run_stream_bench(model_name: str, device: str, threads: int, counts: list[int], max_streams: int | None,
                     hops: int = 300) -> dict:
    from rtdenoise.engine import load_model

    torch.set_num_threads(threads)
    model, checkpoint = load_model(model_name, device)
    report = {"model": checkpoint.get("name", model_name), "device": device, "threads": threads,
              "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
              "trials": [measure_streams(model, n, device, hops) for n in counts]}
    if max_streams:
        report["max_real_time_streams"], found = search_max_streams(model, device, max_streams, hops)
        report["trials"] = sorted(report["trials"] + found, key=lambda r: r["streams"])
    return report


def print_stream_report(report: dict) -> str:
    lines = [f"model {report['model']} on {report['device']}" + (f" ({report['gpu']})" if report["gpu"] else "")
             + f", {report['threads']} torch thread(s); all streams stepped as one batch per hop",
             f"{'streams':>8}{'rows':>6}{'hop ms':>8}{'median':>9}{'p99':>8}{'max':>8}{'load':>7}  real time"]
    for r in report["trials"]:
        lines.append(f"{r['streams']:>8}{r['rows']:>6}{r['hop_ms']:>8.1f}{r['median_ms']:>9.3f}{r['p99_ms']:>8.3f}"
                     f"{r['max_ms']:>8.2f}{r['load']:>7.2f}  {'yes' if r['real_time'] else 'no'}")
    if "max_real_time_streams" in report:
        lines.append(f"largest real-time count: {report['max_real_time_streams']} streams (p99 hop time under the hop)")
    return "\n".join(lines)
