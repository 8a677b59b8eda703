"""Offline denoising of files: blocks in, blocks out, bounded memory."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from rtdenoise.engine import StreamingDenoiser
from rtdenoise.models import StreamingModel

from .audio_io import AudioError, FileSink, output_format, partial_path, probe, read_blocks


BLOCK_SECONDS = 1.0


def chunk_samples_for(model: StreamingModel, chunk_ms: float | None) -> int:
    """Model-rate samples per step for ``chunk_ms`` (rounded up to a hop multiple).

    Default: one hop, or 10 ms for models whose hop is a single sample.
    """
    if chunk_ms is None:
        chunk_ms = max(1000.0 * model.hop / model.sample_rate, 10.0)
    if chunk_ms <= 0:
        raise ValueError(f"--chunk-ms must be positive, got {chunk_ms}")
    samples = max(1, round(chunk_ms * model.sample_rate / 1000.0))
    return -(-samples // model.hop) * model.hop


def denoise_file(
    source: str | Path,
    target: str | Path,
    model: StreamingModel,
    chunk_ms: float | None = None,
    progress: Callable[[float], None] | None = None,
    max_attenuation_db: float | None = None,
    overwrite: bool = True,
    gate_db: float | None = None,
) -> dict:
    """Denoise ``source`` into ``target`` with the same rate and channels, in the format that
    ``target``'s extension names (see :func:`output_format`).

    Output sample n lines up with input sample n and the lengths are equal.
    ``progress`` is called with the seconds of audio just consumed;
    ``max_attenuation_db`` limits how much is removed (see :class:`StreamingDenoiser`);
    with ``overwrite`` False a file that appears at ``target`` meanwhile is never replaced;
    ``gate_db`` adds the voice gate (silence between words, see :mod:`rtdenoise.engine.gate`).

    Returns:
        A summary dict (frames, seconds, sample_rate, channels, and the engine's safety counters:
        nonfinite_samples, clipped_samples, limited_samples, state_resets).
    """
    info = probe(source)
    target = Path(target)
    if target.exists() and target.resolve() == info.path.resolve():
        raise AudioError(f"{target}: refusing to overwrite the input file")
    engine = StreamingDenoiser(
        model,
        channels=info.channels,
        sample_rate=info.sample_rate,
        chunk_samples=chunk_samples_for(model, chunk_ms),
        compensate_latency=True,
        coalesce=True,
        max_attenuation_db=max_attenuation_db,
        gate_db=gate_db,
    )
    block_frames = max(1, int(BLOCK_SECONDS * info.sample_rate))
    fmt, subtype = output_format(target, info)
    try:
        with FileSink(target, info.sample_rate, info.channels, fmt, subtype, replace=overwrite) as sink:
            for block in read_blocks(info, block_frames):
                sink.write(engine.process(block))
                if progress:
                    progress(len(block) / info.sample_rate)
            sink.write(engine.flush())
            if engine.frames_in == 0:
                raise AudioError(f"{info.path}: contains no audio")
    except BaseException:  # also an interrupt that lands before the sink's `with` guards it
        partial_path(target).unlink(missing_ok=True)
        raise
    return {
        "frames": engine.frames_in,
        "seconds": engine.frames_in / info.sample_rate,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "nonfinite_samples": engine.nonfinite_samples,
        "clipped_samples": engine.clipped_samples,
        "limited_samples": engine.limited_samples,
        "state_resets": engine.state_resets,
    }
