"""Audio files in and out, in blocks, keeping rate, channels, format and subtype.

Outputs are written to a hidden temporary file beside the target and renamed
into place only when complete, so an interrupted run never leaves half a file.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from rtdenoise.engine.resample import MAX_RATE, MIN_RATE
from rtdenoise.errors import first_line


_SUFFIX_FORMATS = {"." + name.lower(): name for name in sf.available_formats()} | {
    ".oga": "OGG", ".aif": "AIFF", ".aifc": "AIFF"}
AUDIO_SUFFIXES = set(_SUFFIX_FORMATS) | {".opus"}  # read from folders; written by output_format
_HIGH_RESOLUTION_SUBTYPES = ("PCM_24", "PCM_32", "FLOAT", "DOUBLE")
_WAV_FAMILY = ("WAV", "WAVEX", "RF64")
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                 "FLOAT": 4, "DOUBLE": 8}
WAV_MAX_BYTES = (1 << 32) - (1 << 20)  # a WAV's sizes are 32-bit: beyond this, write RF64
DISK_FULL_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full
_INTEGER_SUBTYPES = ("PCM_", "ULAW", "ALAW", "DPCM", "G72", "IMA_ADPCM", "MS_ADPCM", "GSM", "VOX")


class AudioError(Exception):
    """A file that cannot be read or written; the message names the file."""


@dataclass
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | Path) -> AudioInfo:
    """Check that ``path`` is a readable, non-empty audio file and describe it."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as error:  # a symlink loop, a name too long, no permission to look
        raise AudioError(f"{path}: cannot be read ({error.strerror or first_line(error)})") from None
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if not path.is_file():  # a pipe, socket or device: it cannot be probed, rewound or read in blocks twice
        raise AudioError(f"{path}: not a regular file (a pipe or a device); save the audio to a file first")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({first_line(error)})") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{path}: invalid header (rate {info.samplerate}, channels {info.channels})")
    if not MIN_RATE <= info.samplerate <= MAX_RATE:  # before any buffer is sized by it
        raise AudioError(f"{path}: sample rate {info.samplerate} Hz in its header is not supported "
                         f"({MIN_RATE}-{MAX_RATE} Hz)")
    if info.frames == 0:
        raise AudioError(f"{path}: contains no audio (0 frames)")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), info.format, info.subtype)


def read_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``(frames, channels)`` float32 blocks of ``info.path``."""
    try:
        with sf.SoundFile(str(info.path)) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block
    except sf.LibsndfileError as error:
        raise AudioError(f"{info.path}: read failed ({first_line(error)})") from None


def output_format(target: Path, info: AudioInfo) -> tuple[str, str]:
    """(format, subtype) for ``target``: the format its extension names (the input's when it has none),
    with the input's subtype wherever that format takes it; RF64 for a WAV too big for WAV's 4 GiB."""
    suffix = Path(target).suffix.lower()
    if suffix == ".opus":
        return "OGG", "OPUS"
    fmt = _SUFFIX_FORMATS.get(suffix) if suffix else info.format
    if fmt is None:
        raise AudioError(f"{target}: unknown audio file type '{suffix}' (use .wav, .flac, .ogg, .mp3, .aiff, ...)")
    if fmt == "WAV" and info.format in _WAV_FAMILY:
        fmt = info.format  # an RF64 or WAVEX input named .wav stays what it is
    if fmt == info.format or sf.check_format(fmt, info.subtype):
        subtype = info.subtype
    elif info.subtype in _HIGH_RESOLUTION_SUBTYPES and sf.check_format(fmt, "PCM_24"):
        subtype = "PCM_24"
    else:
        subtype = sf.default_subtype(fmt)
    if fmt in ("WAV", "WAVEX") and info.frames * info.channels * _SAMPLE_BYTES.get(subtype, 4) >= WAV_MAX_BYTES:
        fmt = "RF64"
    return fmt, subtype


NAME_MAX = 255  # bytes in one file name on Linux file systems


def _partial_prefix(target: Path) -> str:
    """The hidden temporary name's stem for ``target``: its name, shortened (never the user's
    name itself) with a hash when the prefix and suffix would pass NAME_MAX."""
    name = target.name
    room = NAME_MAX - len(".") - len(".4194304.partial")
    if len(name.encode()) <= room:
        return f".{name}"
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    short = name.encode()[: room - 13].decode(errors="ignore")
    return f".{short}~{digest}"


def partial_path(target: Path, pid: int | None = None) -> Path:
    """Where process ``pid`` (default: this one) writes ``target`` until it is complete."""
    return target.with_name(f"{_partial_prefix(target)}.{pid or os.getpid()}.partial")


def remove_stale_partials(target: Path) -> int:
    """Remove temporary files for ``target`` left by processes that no longer run (a SIGKILL); count them."""
    removed = 0
    prefix = _partial_prefix(target)
    try:
        candidates = list(target.parent.glob(f"{glob.escape(prefix)}.*.partial"))
    except OSError:
        return 0
    for candidate in candidates:
        pid = candidate.name[len(prefix) + 1: -len(".partial")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rename_without_replacing(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` atomically, raising FileExistsError if ``target`` exists."""
    try:
        os.link(source, target)  # fails if target exists, atomically
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename (a tiny window remains)
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(source, target)
        return
    source.unlink()


class FileSink:
    """Block writer that appears at ``path`` only once :meth:`commit` is called."""

    def __init__(self, path: str | Path, sample_rate: int, channels: int, format: str, subtype: str,
                 replace: bool = True) -> None:
        self.path = Path(path)
        self.replace = replace  # False: a file that appears at ``path`` meanwhile is kept, and this one refused
        self.temporary = partial_path(self.path)
        self.clip = subtype.startswith(_INTEGER_SUBTYPES)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.path)
            os.close(os.open(self.temporary, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))  # the OS says why not
            self.handle = sf.SoundFile(
                str(self.temporary), "w", samplerate=sample_rate, channels=channels, format=format, subtype=subtype
            )
        except FileExistsError:
            raise AudioError(f"{self.path}: another process is writing it right now") from None
        except (sf.LibsndfileError, OSError, ValueError, TypeError) as error:
            self.temporary.unlink(missing_ok=True)
            reason = getattr(error, "strerror", None) or first_line(error).replace(str(self.temporary), self.path.name)
            raise AudioError(f"{self.path}: cannot write {format}/{subtype} here ({reason})") from None
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        if self.clip:
            block = np.clip(block, -1.0, 1.0)
        try:
            self.handle.write(block)
        except (sf.LibsndfileError, OSError, RuntimeError) as error:
            raise self._write_error(error) from None
        self.frames += len(block)

    def commit(self) -> Path:
        """Close and move the finished file into place."""
        try:
            self.handle.close()
            if self.replace:
                os.replace(self.temporary, self.path)
            else:
                _rename_without_replacing(self.temporary, self.path)
        except FileExistsError:
            self.temporary.unlink(missing_ok=True)
            raise AudioError(f"{self.path}: appeared while this was written (another process?); "
                             f"kept it, pass --overwrite to replace it") from None
        except (sf.LibsndfileError, OSError, RuntimeError) as error:
            raise self._write_error(error) from None
        return self.path

    def discard(self) -> None:
        """Close and delete the unfinished file (a failing close is moot: the file goes)."""
        try:
            self.handle.close()
        except (sf.LibsndfileError, OSError, RuntimeError):
            pass
        finally:
            self.temporary.unlink(missing_ok=True)

    def _write_error(self, error: BaseException) -> AudioError:
        """libsndfile says only "System error." when the disk fills: name the file and say so."""
        try:
            free = shutil.disk_usage(self.temporary.parent).free
        except OSError:
            free = None
        reason = "no space left on the disk" if free is not None and free < DISK_FULL_BYTES else first_line(error)
        return AudioError(f"{self.path}: writing failed ({reason})")

    def __enter__(self) -> "FileSink":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()
