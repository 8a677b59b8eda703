"""``rtdenoise denoise --ray [ADDRESS]``: the per-file work of ``--jobs`` as tasks on a Ray cluster.

Each worker is a Ray actor that loads the model once and runs :func:`denoise_file`
(temporary file, then rename) on the files it is given; a shared counter actor
adds up the seconds of audio done across the cluster for the progress bar. A file
that fails is reported and the others go on. Ctrl-C asks every actor to stop at
its next one-second block (its partial file is removed by ``denoise_file``), then
the actors are killed. Inputs and outputs must be paths every node can reach.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


POLL_SECONDS = 0.25
PROGRESS_SECONDS = 0.25  # a worker reports the audio it has done at most this often
STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class FileJob:
    """What every file gets: the model and the settings of the ``denoise`` command."""
    model_name: str | None
    device: str = "cpu"
    chunk_ms: float | None = None
    max_attenuation_db: float | None = None
    overwrite: bool = True
    gate_db: float | None = None


def import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'rtdenoise[cluster]'") from None
    return ray


def _actor_classes(ray):
    @ray.remote(num_cpus=0)
    class SecondsDone:
        def __init__(self) -> None:
            self.total = 0.0

        def add(self, seconds: float) -> None:
            self.total += seconds

        def get(self) -> float:
            return self.total

    @ray.remote(num_cpus=1, max_concurrency=2)  # one slot denoises, the other can take `stop`
    class FileWorker:
        def __init__(self, job: FileJob, counter) -> None:
            import torch

            from rtdenoise.engine import load_model

            torch.set_num_threads(1)
            self.job, self.counter, self.stopping = job, counter, False
            self.model = load_model(job.model_name, job.device)[0]

        def denoise(self, source: str, target: str) -> tuple[dict | None, str | None]:
            from rtdenoise.errors import first_line

            from .offline import denoise_file

            unsent = [0.0, time.monotonic()]  # seconds done, when last sent: one message per PROGRESS_SECONDS

            def block_done(seconds: float) -> None:
                if self.stopping:
                    raise KeyboardInterrupt
                unsent[0] += seconds
                if time.monotonic() - unsent[1] >= PROGRESS_SECONDS:
                    self.counter.add.remote(unsent[0])
                    unsent[:] = [0.0, time.monotonic()]

            job = self.job
            try:
                summary = denoise_file(source, target, self.model, job.chunk_ms, progress=block_done,
                                       max_attenuation_db=job.max_attenuation_db, overwrite=job.overwrite,
                                       gate_db=job.gate_db)
                ray.get(self.counter.add.remote(unsent[0]))  # counted before the driver hears the file is done
                return summary, None
            except KeyboardInterrupt:
                return None, "stopped"
            except Exception as error:  # reported by the driver; the other files go on
                return None, f"{target}: {first_line(error)}"

        def stop(self) -> None:
            self.stopping = True

    return SecondsDone, FileWorker


def denoise_on_ray(pairs: list[tuple[Path, Path]], job: FileJob, address: str | None,
                   on_file: Callable[[Path, Path, dict], None], on_error: Callable[[Path, str], None],
                   on_progress: Callable[[float], None], workers: int | None = None) -> int:
    """Denoise every pair on Ray (a local cluster when ``address`` is None); returns the number that failed."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({"num_cpus": workers} if address is None and workers else {}))
    try:
        return _run(ray, pairs, job, on_file, on_error, on_progress, workers)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray, pairs, job, on_file, on_error, on_progress, workers) -> int:
    seconds_done, file_worker = _actor_classes(ray)
    counter = seconds_done.remote()
    count = max(1, min(len(pairs), workers or int(ray.cluster_resources().get("CPU", 1))))
    actors = [file_worker.remote(job, counter) for _ in range(count)]
    queue = list(pairs)
    running: dict = {}  # ref -> (actor, source, target)
    idle = list(actors)
    failed, reported = 0, 0.0
    try:
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                source, target = queue.pop(0)
                running[actor.denoise.remote(str(source), str(target))] = (actor, source, target)
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            now = ray.get(counter.get.remote())
            on_progress(now - reported)
            reported = now
            for ref in done:
                actor, source, target = running.pop(ref)
                idle.append(actor)
                summary, error = ray.get(ref)
                if error is None:
                    on_file(source, target, summary)
                else:
                    failed += 1
                    on_error(source, error)
    except BaseException:
        _stop(ray, actors, list(running))
        raise
    on_progress(ray.get(counter.get.remote()) - reported)  # blocks counted after the last poll
    for actor in actors:
        ray.kill(actor)
    return failed


def _stop(ray, actors: list, running: list) -> None:
    """Each actor stops at its next block (removing its partial file), then all are killed."""
    for actor in actors:
        actor.stop.remote()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        _, running = ray.wait(running, num_returns=len(running), timeout=max(0.0, deadline - time.monotonic()))
    for actor in actors:
        ray.kill(actor)
