"""``rtdenoise bench --streams N`` / ``--max-streams``: concurrent real-time streams of one model.

All streams are stepped together, one batch per hop (:class:`MultiStreamEngine`);
a count is real time when the 99th percentile of the time one hop of all streams
takes stays under the hop's duration.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from rtdenoise.engine.streams import MultiStreamEngine

from .one_stream import bench_audio


WARMUP_HOPS = 20


@dataclass
class StreamBenchOptions:
    """What ``rtdenoise bench --streams N`` / ``--max-streams LIMIT`` measures."""

    model: str
    device: str = "cpu"
    threads: int = 1
    counts: list[int] = field(default_factory=list)
    max_streams: int | None = None
    hops: int = 300
    muted: float = 0.0  # the share of the streams in digital silence (muted callers: their rows are not stepped)


def measure_streams(model, count: int, device: str, hops: int = 300, muted: float = 0.0) -> dict:
    """Hop times for ``count`` streams of recorded speech at different offsets (the batched step, audio in
    and out of the engine included; the caller's own gathering of audio is not); ``muted``: the share of
    them that are digital silence throughout."""
    engine = MultiStreamEngine(model, device)
    audio = bench_audio(max(10.0, hops * model.hop / model.sample_rate + 1), model.sample_rate)[:, 0]
    usable = len(audio) - (hops + WARMUP_HOPS) * model.hop
    offsets = np.random.default_rng(0).integers(0, max(1, usable), size=count)
    for stream in range(count):
        engine.join(stream)
    order = np.asarray(engine.streams)
    index = offsets[order][:, None] + np.arange(model.hop)[None]
    silent = order < round(muted * count)
    times = []
    for t in range(hops + WARMUP_HOPS):
        rows = audio[index + t * model.hop]
        rows[silent] = 0.0
        started = time.perf_counter()
        engine.step_rows(rows)
        if t >= WARMUP_HOPS:
            times.append(time.perf_counter() - started)
    hop_ms = 1000 * model.hop / model.sample_rate
    ms = 1000 * np.asarray(times)
    p99 = float(np.percentile(ms, 99))
    return {"streams": count, "muted": int(silent.sum()), "rows": engine.capacity, "hop_ms": hop_ms,
            "median_ms": float(np.median(ms)), "p99_ms": p99, "max_ms": float(ms.max()), "load": p99 / hop_ms,
            "real_time": p99 < hop_ms}


def search_max_streams(model, options: StreamBenchOptions) -> tuple[int, list[dict]]:
    """The largest count up to ``options.max_streams`` that stays real time: doubling, then bisection."""
    trials: list[dict] = []
    limit = options.max_streams

    def fits(count: int) -> bool:
        trials.append(measure_streams(model, count, options.device, options.hops, options.muted))
        return trials[-1]["real_time"]

    low, high = 0, 1
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > max(1, low // 50):  # to within 2 %
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low, sorted(trials, key=lambda r: r["streams"])


def run_stream_bench(options: StreamBenchOptions) -> dict:
    from rtdenoise.engine import load_model

    torch.set_num_threads(options.threads)
    model, checkpoint = load_model(options.model, options.device)
    report = {"model": checkpoint.get("name", options.model), "device": options.device, "threads": options.threads,
              "gpu": torch.cuda.get_device_name() if options.device.startswith("cuda") else None,
              "muted": options.muted,
              "trials": [measure_streams(model, n, options.device, options.hops, options.muted)
                         for n in options.counts]}
    if options.max_streams:
        report["max_real_time_streams"], found = search_max_streams(model, options)
        report["trials"] = sorted(report["trials"] + found, key=lambda r: r["streams"])
    return report


def print_stream_report(report: dict) -> str:
    lines = [f"model {report['model']} on {report['device']}" + (f" ({report['gpu']})" if report["gpu"] else "")
             + f", {report['threads']} torch thread(s); all streams stepped as one batch per hop"
             + (f"; {100 * report['muted']:g} % of them muted (digital silence)" if report.get("muted") else ""),
             f"{'streams':>8}{'muted':>7}{'rows':>6}{'hop ms':>8}{'median':>9}{'p99':>8}{'max':>8}{'load':>7}"
             "  real time"]
    for r in report["trials"]:
        lines.append(f"{r['streams']:>8}{r['muted']:>7}{r['rows']:>6}{r['hop_ms']:>8.1f}{r['median_ms']:>9.3f}"
                     f"{r['p99_ms']:>8.3f}{r['max_ms']:>8.2f}{r['load']:>7.2f}  {'yes' if r['real_time'] else 'no'}")
    if "max_real_time_streams" in report:
        lines.append(f"largest real-time count: {report['max_real_time_streams']} streams (p99 hop time under the hop)")
    return "\n".join(lines)
