"""Denoise many files, in this process or in ``jobs`` worker processes.

Each output is complete or absent: a file being written when Ctrl-C or SIGTERM
arrives is discarded (its temporary file removed), finished ones stay.
"""
from __future__ import annotations

import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

import torch

_worker_model = None


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _init_worker(model_name: str | None, device: str, threads: int) -> None:
    global _worker_model
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    torch.set_num_threads(threads)
    from .engine import load_model

    _worker_model = load_model(model_name, device)[0]


def _denoise_in_worker(source: str, target: str, chunk_ms: float | None) -> tuple[str, dict]:
    from .offline import denoise_file

    return source, denoise_file(source, target, _worker_model, chunk_ms)


def denoise_many(pairs: list[tuple[Path, Path]], model, model_name: str | None, device: str,
                 chunk_ms: float | None, jobs: int, on_file: Callable[[Path, Path, dict], None],
                 on_progress: Callable[[float], None]) -> None:
    """Run every (source, target) pair; ``on_file`` after each, ``on_progress(seconds)`` as audio is done."""
    from .audio_io import probe
    from .offline import denoise_file

    if jobs <= 1 or len(pairs) <= 1:
        for source, target in pairs:
            rate = probe(source).sample_rate
            summary = denoise_file(source, target, model, chunk_ms,
                                   progress=lambda frames, r=rate: on_progress(frames / r))
            on_file(source, target, summary)
        return
    threads = max(1, torch.get_num_threads() // jobs)
    executor = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(model_name, device, threads))
    targets = dict((str(s), t) for s, t in pairs)
    try:
        futures = {executor.submit(_denoise_in_worker, str(s), str(t), chunk_ms) for s, t in pairs}
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                source, summary = future.result()
                on_progress(summary["seconds"])
                on_file(Path(source), targets[source], summary)
    except BaseException:
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()  # workers discard their unfinished file and exit
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
