"""Stream mode: a test set's mixtures joined into streams whose conditions change, each scored from the stream.

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate (``training.evaluate --stream``).

A microphone is one endless stream, so a model is judged there too. Rows:

* ``stream``: every mixture, in a seeded order, end to end: speaker, noise, SNR and level change
  every few seconds while each system's state carries on.
* hard streams, each made of every ``HARD_EVERY``-th mixture (a seeded choice of changes):
  ``fade-in`` the mixture's noise rises from silence over 1-3 s; ``level step`` its level changes by
  +12 or -12 dB half way through (the reference too); ``after pause`` 10-30 s of its own noise alone
  come first (the row also gives how much of that noise was removed); ``new speaker`` its speech is laid
  over the noise of the mixture before it, which goes on unchanged (only the speaker changes; grouped by
  that noise's type and the SNR heard);
  ``no pauses`` 8-12 s of the same speaker's speech from other mixtures, its pauses cut out, come first
  over the mixture's own noise (read speech that never leaves the noise alone, as an audiobook);
  ``dropouts`` the microphone drops out (digital zeros, in the reference too) for 20-90 ms three times
  in each mixture, as a Bluetooth or network microphone does.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from typing import Callable, NamedTuple

import numpy as np
from tqdm import tqdm

from training.dataset import SAMPLE_RATE
from training.scoring.metrics import group_keys, score, summarise
from training.mixing.pauses import active_rms, rms, without_pauses
from training.mixing.stream_mix import fade_in_noise, join, level_step

HARD_EVERY = 6
HARD_KINDS = ("fade-in", "level step", "after pause", "new speaker", "no pauses", "dropouts")
DROPOUTS = 3                   # per mixture of the ``dropouts`` stream ...
DROPOUT_MS = (20.0, 90.0)      # ... each this long (uniform)
System = Callable[[np.ndarray], np.ndarray]


class Piece(NamedTuple):
    """A piece of a stream: scored as mixture ``index`` (None: context, not scored), grouped by that mixture's
    metadata with ``relabel``'s entries in place of its own (what the piece really plays, where it differs)."""

    noisy: np.ndarray
    clean: np.ndarray
    index: int | None
    relabel: dict | None = None


def stream_order(count: int, seed: int) -> list[int]:
    """The seeded order in which ``count`` mixtures are joined."""
    return [int(i) for i in np.random.default_rng(seed).permutation(count)]


def ping_pong(noise: np.ndarray, samples: int) -> np.ndarray:
    """``samples`` of ``noise`` played forwards and backwards in turn (no jump at the turns), ending on
    a backwards pass, so that its last sample is ``noise[0]``: it runs on into the mixture seamlessly."""
    cycle = np.concatenate([noise, noise[::-1]])
    repeats = samples // len(cycle) + 2
    return np.tile(cycle, repeats)[-samples:]


def speech_run(cleans: list[np.ndarray], level: float, samples: int) -> np.ndarray:
    """``samples`` of the ``cleans`` back to back without their pauses, each brought to RMS ``level`` (active speech)."""
    parts, total = [], 0
    for clean in cleans:
        if total >= samples:
            break
        active = without_pauses(clean)
        if len(active):
            parts.append(active * (level / rms(active)))  # pauses cut once per clip
            total += len(active)
    run = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.pad(run, (0, max(0, samples - len(run))))[:samples].astype(np.float32)


def same_speaker_before(position: int, order: list[int], metas: list[dict] | None) -> list[int]:
    """The mixtures before ``order[position]`` in the stream's order (wrapping round), nearest first,
    of the same speaker when ``metas`` say who speaks."""
    index = order[position]
    before = [order[(position - k) % len(order)] for k in range(1, len(order))]
    if metas is None:
        return before
    speaker = metas[index].get("speaker")
    return [i for i in before if metas[i].get("speaker") == speaker]


def hard_pieces(kind: str, arrays: list[tuple[np.ndarray, np.ndarray]], chosen: list[int],
                rng: np.random.Generator, order: list[int] | None = None,
                metas: list[dict] | None = None) -> list[Piece]:
    """The pieces of one hard stream (each a :class:`Piece`); a scored piece
    may begin with unscored context (the pause), which ``score_stream`` cuts off by its length; ``order`` (the
    stream's, default: as given) and ``metas`` say whose speech comes before a mixture in ``no pauses``."""
    order = order if order is not None else list(range(len(arrays)))
    place = {index: position for position, index in enumerate(order)}
    pieces = []
    for position, index in enumerate(chosen):
        noisy, clean = arrays[index]
        if kind == "fade-in":
            pieces.append(Piece(fade_in_noise(noisy, clean, int(rng.uniform(1.0, 3.0) * SAMPLE_RATE)), clean, index))
        elif kind == "level step":
            stepped = level_step(noisy, clean, len(noisy) // 2, 12.0 if position % 2 == 0 else -12.0)
            pieces.append(Piece(*stepped, index))
        elif kind == "after pause":
            pause = ping_pong(noisy - clean, int(rng.uniform(10.0, 30.0) * SAMPLE_RATE))
            pieces.append(Piece(pause, np.zeros_like(pause), None))
            pieces.append(Piece(noisy, clean, index))
        elif kind == "new speaker":
            before_index = chosen[position - 1]      # the mixture before (the last one, for the first)
            before = arrays[before_index]
            noise = (before[0] - before[1])[::-1]   # goes on from where that mixture ended
            length = min(len(noise), len(clean))
            pieces.append(Piece(before[0], before[1], None))
            heard = heard_labels(metas[before_index], clean[:length], noise[:length]) if metas else None
            pieces.append(Piece(clean[:length] + noise[:length], clean[:length], index, heard))
        elif kind == "no pauses":
            others = same_speaker_before(place[index], order, metas)
            level = active_rms(clean)
            if not others or level == 0.0:  # nothing to read before it: the mixture alone
                pieces.append(Piece(noisy, clean, index))
                continue
            speech = speech_run([arrays[i][1] for i in others], level, int(rng.uniform(8.0, 12.0) * SAMPLE_RATE))
            noise = ping_pong(noisy - clean, len(speech))
            pieces.append(Piece(speech + noise, speech, None))
            pieces.append(Piece(noisy, clean, index))
        elif kind == "dropouts":
            pieces.append(Piece(*with_dropouts(noisy, clean, rng), index))
        else:
            raise ValueError(f"unknown hard stream {kind!r}")
    return pieces


def with_dropouts(noisy: np.ndarray, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both signals with DROPOUTS stretches of DROPOUT_MS digital zeros at random places (what was said
    there is lost for every system alike)."""
    noisy, clean = noisy.copy(), clean.copy()
    for _ in range(DROPOUTS):
        length = int(rng.uniform(*DROPOUT_MS) * SAMPLE_RATE / 1000)
        start = int(rng.integers(0, max(1, len(noisy) - length)))
        noisy[start:start + length] = 0.0
        clean[start:start + length] = 0.0
    return noisy, clean


def heard_labels(noise_meta: dict, clean: np.ndarray, noise: np.ndarray) -> dict:
    """A mixture's speech over another's noise: that noise's type and the SNR heard, on the sets' 5 dB grid."""
    snr = 10 * np.log10(np.sum(np.square(clean, dtype=np.float64)) / (np.sum(np.square(noise, dtype=np.float64))
                                                                       + 1e-12) + 1e-12)
    return {"noise": noise_meta.get("noise", "?"), "noise_type": noise_meta.get("noise_type", "?"),
            "snr_db": float(5 * round(snr / 5))}


def score_stream(system: System, pieces: list[Piece],
                 metas: list[dict] | None) -> tuple[list[dict], list[float]]:
    """Run ``system`` over the pieces end to end and score every piece that names its mixture;
    also the noise removed (dB) in each unscored piece without speech (a pause)."""
    noisy, clean, spans = join([(p.noisy, p.clean) for p in pieces])
    estimate = np.asarray(system(noisy), dtype=np.float64)[: len(noisy)]
    rows, removed = [], []
    for (start, end), piece in zip(spans, pieces):
        segment = estimate[start:end]
        if piece.index is None:
            if not piece.clean.any():
                removed.append(10 * np.log10((np.mean(np.square(piece.noisy, dtype=np.float64)) + 1e-20)
                                             / (np.mean(np.square(segment)) + 1e-20)))
            continue
        mixture_noisy, mixture_clean = (x.astype(np.float64) for x in (piece.noisy, piece.clean))
        meta = {**metas[piece.index], **(piece.relabel or {})} if metas else None
        keys = group_keys(meta, mixture_noisy, mixture_clean)
        rows.append({**score(segment, mixture_clean, mixture_noisy), **keys})
    return rows, removed


def evaluate_streams(pairs, metas, systems: dict[str, System], seed: int = 0) -> dict:
    """For each system: ``"NAME (stream)"`` (all mixtures joined, summarised like the fresh scores) and
    ``"NAME (KIND)"`` for each hard stream (its ``overall`` has ``pause_noise_removed_db`` after a pause)."""
    arrays = [tuple(t.reshape(-1).numpy().astype(np.float32) for t in pair) for pair in pairs]
    order = stream_order(len(arrays), seed)
    streams = {"stream": [Piece(*arrays[i], i) for i in order]}
    chosen = order[::HARD_EVERY]
    for offset, kind in enumerate(HARD_KINDS):
        streams[kind] = hard_pieces(kind, arrays, chosen, np.random.default_rng([seed, offset]), order, metas)
    results: dict[str, dict] = defaultdict(dict)
    for name, system in tqdm(systems.items(), desc="streams", unit="system", file=sys.stderr):
        for kind, pieces in streams.items():
            rows, removed = score_stream(system, pieces, metas)
            summary = summarise(rows, tuple(k for k in rows[0] if isinstance(rows[0][k], float)))
            if removed:
                summary["overall"]["pause_noise_removed_db"] = float(np.mean(removed))
            results[f"{name} ({kind})"] = summary
    return dict(results)


def print_stream_tables(fresh: dict, streams: dict) -> None:
    """Fresh and stream side by side for every system, then each hard stream (PESQ-WB / STOI / SI-SDRi)."""
    names = list(fresh)
    kinds = ("stream",) + HARD_KINDS
    width = max(16, *(len(name) + 2 for name in names))
    print("\nfresh clips and streams: PESQ-WB / STOI / SI-SDRi (dB); after pause: noise removed in the pause")
    print(f"{'system':<{width}}" + "".join(f"{title:>24}" for title in ("fresh",) + kinds))
    for name in names:
        cells = [fresh[name]["overall"]] + [streams.get(f"{name} ({kind})", {}).get("overall") for kind in kinds]
        text = "".join(f"{c['pesq']:>9.3f} /{c['stoi']:>6.3f} /{c['si_sdr_i']:>+6.2f}" if c else f"{'-':>24}"
                       for c in cells)
        print(f"{name:<{width}}" + text)
    pauses = {name: streams.get(f"{name} (after pause)", {}).get("overall", {}).get("pause_noise_removed_db")
              for name in names}
    print("noise removed during the long pauses (dB): "
          + ", ".join(f"{name} {db:.1f}" for name, db in pauses.items() if db is not None))
