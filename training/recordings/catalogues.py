"""Packages that hold many recordings in one file, written out as plain WAV files.

Pipeline step 1 of 5 (corpus -> dataset -> train -> evaluate -> ship): corpus.

OpenTTD's ``.cat`` (the OpenSFX package): a table of little-endian ``(offset, size)``
pairs (the first offset, with its top bit set as a format flag, also says how long the
table is); each entry is a length-prefixed description followed by a RIFF WAV file. Festival's
diphone voices: see :mod:`training.recordings.festival_diphones`.
"""
from __future__ import annotations

import struct
from pathlib import Path

from training.recordings.festival_diphones import write_utterances

FLAG = 0x80000000


def split_openttd_catalogue(catalogue: Path, folder: Path) -> list[Path]:
    """Write each WAV entry of ``catalogue`` to ``folder/NN.wav`` (NN: its index); returns the files written.

    Entries that are not WAV data (OpenSFX's empty placeholders) are skipped.
    """
    data = catalogue.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{catalogue}: too short for a sound catalogue")
    count = (struct.unpack_from("<I", data)[0] & ~FLAG) // 8
    if not 0 < count * 8 <= len(data):
        raise ValueError(f"{catalogue}: not an OpenTTD sound catalogue")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * index)
        offset &= ~FLAG
        entry = data[offset: offset + size]
        if not entry:
            continue
        wav = entry[1 + entry[0]:]   # after the description: one length byte, then its text
        if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
            continue
        path = folder / f"{index:02d}.wav"
        path.write_bytes(wav)
        written.append(path)
    return written


UNPACKERS = {"openttd": split_openttd_catalogue, "festival-diphones": write_utterances}


def unpack_catalogue(kind: str, source: Path, folder: Path) -> list[Path]:
    """Write the recordings of ``source`` (a catalogue of ``kind``) into ``folder``; returns the files written."""
    return UNPACKERS[kind](source, folder)
