"""Denoise many files, in this process or in ``jobs`` worker processes.

Each output is complete or absent: a file being written when Ctrl-C or SIGTERM
arrives is discarded (its temporary file removed), finished ones stay.

Workers never take an asynchronous exception: a signal only sets a flag that the
worker reads between one-second blocks. An exception raised at an arbitrary
point could land while a worker holds a pool queue's lock or is half-way
through writing a result, which hangs the pool's reader for good.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_EXIT_SECONDS = 30.0
PROGRESS_POLL_SECONDS = 0.25

_worker_model = None
_worker_seconds_done = None  # shared with the parent: seconds of audio denoised by all workers
_stop_requested = False
_parent_pid: int | None = None  # the process that started this worker
_busy = False                   # a file is being denoised (its partial must be removed before exiting)
EXIT_PARENT_GONE = 1


def _request_stop(signum, frame) -> None:
    global _stop_requested
    _stop_requested = True
    if _parent_gone() and not _busy:  # idle, and nobody will ever send more work or read a result
        os._exit(EXIT_PARENT_GONE)


def _parent_gone() -> bool:
    return _parent_pid is not None and os.getppid() != _parent_pid


def _raise_if_stopped() -> None:
    if _stop_requested:
        raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies, even by SIGKILL (no orphans finishing files)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass
    global _parent_pid
    _parent_pid = parent
    if _parent_gone():  # it died before we asked
        os._exit(EXIT_PARENT_GONE)


def _init_worker(model_name: str | None, device: str, threads: int, seconds_done, parent: int) -> None:
    global _worker_model, _worker_seconds_done
    _worker_seconds_done = seconds_done
    for number in STOP_SIGNALS:
        signal.signal(number, _request_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent around the fork
    _die_with_parent(parent)
    torch.set_num_threads(threads)
    from rtdenoise.engine import load_model

    _worker_model = load_model(model_name, device)[0]


def _denoise_in_worker(source: str, target: str, chunk_ms: float | None,
                       max_attenuation_db: float | None, overwrite: bool,
                       gate_db: float | None = None) -> tuple[str, dict]:
    from .offline import denoise_file

    global _busy
    _raise_if_stopped()

    def block_done(seconds: float) -> None:
        _raise_if_stopped()
        with _worker_seconds_done.get_lock():
            _worker_seconds_done.value += seconds

    _busy = True
    try:
        return source, denoise_file(source, target, _worker_model, chunk_ms, progress=block_done,
                                    max_attenuation_db=max_attenuation_db, overwrite=overwrite, gate_db=gate_db)
    except KeyboardInterrupt:
        if _parent_gone():  # its partial file is already removed; nobody is left to report to
            os._exit(EXIT_PARENT_GONE)
        raise
    finally:
        _busy = False


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while workers fork, so each starts with the flag handler."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a signal that came meanwhile lands here


def denoise_many(pairs: list[tuple[Path, Path]], model, model_name: str | None, device: str,
                 chunk_ms: float | None, jobs: int, on_file: Callable[[Path, Path, dict], None],
                 on_progress: Callable[[float], None], max_attenuation_db: float | None = None,
                 overwrite: bool = True, gate_db: float | None = None) -> None:
    """Run every (source, target) pair; ``on_file`` after each, ``on_progress(seconds)`` as audio is done."""
    from .offline import denoise_file

    if jobs <= 1 or len(pairs) <= 1:
        for source, target in pairs:
            summary = denoise_file(source, target, model, chunk_ms, progress=on_progress,
                                   max_attenuation_db=max_attenuation_db, overwrite=overwrite, gate_db=gate_db)
            on_file(source, target, summary)
        return
    threads = max(1, torch.get_num_threads() // jobs)
    targets = dict((str(s), t) for s, t in pairs)
    seconds_done = multiprocessing.Value("d", 0.0)
    reported = 0.0
    executor = None
    try:
        with _stop_signals_blocked():
            executor = ProcessPoolExecutor(jobs, initializer=_init_worker,
                                           initargs=(model_name, device, threads, seconds_done, os.getpid()))
            futures = {executor.submit(_denoise_in_worker, str(s), str(t), chunk_ms, max_attenuation_db, overwrite,
                                       gate_db)
                       for s, t in pairs}
        while futures:
            done, futures = wait(futures, timeout=PROGRESS_POLL_SECONDS, return_when=FIRST_COMPLETED)
            now = seconds_done.get_obj().value  # unlocked: a worker killed holding the lock cannot stall us
            on_progress(now - reported)  # the bar moves as blocks finish, not only as files do
            reported = now
            for future in done:
                source, summary = future.result()
                on_file(Path(source), targets[source], summary)
    except BaseException:
        if executor is not None:
            _stop_workers(executor, list(targets.values()))
        raise
    executor.shutdown(wait=True)


def _stop_workers(executor: ProcessPoolExecutor, targets: list[Path]) -> None:
    """Ask every worker to stop at its next block; kill one that does not, and remove its partial file."""
    from .audio_io import partial_path

    processes = dict(getattr(executor, "_processes", None) or {})
    manager = getattr(executor, "_executor_manager_thread", None)
    for process in processes.values():
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker's handler only sets its stop flag
    executor.shutdown(wait=False, cancel_futures=True)
    for pid, process in processes.items():
        process.join(WORKER_EXIT_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
            for target in targets:
                partial_path(target, pid).unlink(missing_ok=True)
    if manager is not None:
        manager.join(WORKER_EXIT_SECONDS)
