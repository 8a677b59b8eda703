"""Build the clean-speech and noise corpus from Debian packages or your own folders.

Pipeline step 1 of 5 (corpus -> dataset -> train -> evaluate -> ship): corpus.

``python -m training.corpus --out data/corpus`` fetches real recorded speech and
noise with ``apt-get download`` (a fixed list, none reserved for evaluation),
decodes everything to 16 kHz mono WAV with ffmpeg and writes ``manifest.json``.
The sources and their splits are listed in :mod:`training.recordings.sources`: 50+ voices
(Asterisk prompts, KLettres and KTuberling readers, telephone-band prompts) and
60+ noise sources for training; an out-of-domain split whose voices, noises and
packages training never touches. Prompts whose pauses hold hiss are dropped;
voices of unknown sex are labelled from their median pitch.

``--speech DIR`` / ``--noise DIR`` add your own folders (one sub-folder per
speaker or noise source); ``--paired DIR`` takes VoiceBank+DEMAND style
``clean_*/noisy_*`` folders.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

SAMPLE_RATE = 16000
# Only the packages named in the tables of training/recordings/sources.py are ever fetched; none of them
# is among those DATA.md reserves for independent evaluation, and no user input adds packages.
from training.recordings.catalogues import unpack_catalogue  # noqa: E402
from training.recordings.sources import (AUDIO_SUFFIXES, CATALOGUES, NOISE_SETS, SPEECH_SETS, VoiceSet,  # noqa: E402
                                         packages_needed)

VALIDATION_FRACTION = 0.08  # utterances of the training speakers held out for validation
AUDIO_GLOB_SUFFIXES = AUDIO_SUFFIXES


def fetch_packages(packages: set[str], cache: Path) -> dict[str, Path]:
    """``apt-get download`` + ``dpkg -x`` each package once; returns package -> unpacked root."""
    roots = {}
    cache.mkdir(parents=True, exist_ok=True)
    for package in tqdm(sorted(packages), desc="fetch packages", unit="pkg"):
        root = cache / package
        if not (root / ".unpacked").exists():
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
                deb = next(Path(tmp).glob("*.deb"))
                subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            if package in CATALOGUES:  # many recordings in one file: one WAV each
                kind, catalogue, folder = CATALOGUES[package]
                unpack_catalogue(kind, root / catalogue, root / folder)
            (root / ".unpacked").touch()
        roots[package] = root
    return roots


def decode(source: Path, target: Path) -> float:
    """Any audio file (G.722 too) to 16 kHz mono float WAV; returns seconds (0 if unusable)."""
    if target.exists():
        return sf.info(str(target)).duration
    target.parent.mkdir(parents=True, exist_ok=True)
    forced = {".g722": ["-f", "g722"], ".gsm": ["-f", "gsm"]}.get(source.suffix, [])
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *forced, "-i", str(source),
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_f32le", str(target)],
        capture_output=True,
    )
    if result.returncode != 0 or not target.exists():
        target.unlink(missing_ok=True)
        return 0.0
    return sf.info(str(target)).duration


def trim_silence(audio: np.ndarray, threshold_db: float = -45.0, margin: int = 1600) -> np.ndarray:
    """Cut leading/trailing silence (prompts start and end with it), keeping a margin."""
    frame = 320
    usable = len(audio) - len(audio) % frame
    if usable == 0:
        return audio
    energy = 10 * np.log10(np.mean(audio[:usable].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + threshold_db)
    if not len(loud):
        return audio[:0]
    return audio[max(0, loud[0] * frame - margin): min(len(audio), (loud[-1] + 1) * frame + margin)]


def is_clean_recording(audio: np.ndarray, frame: int = 320, min_range_db: float = 30.0) -> bool:
    """True when the quietest frames lie ``min_range_db`` below the loudest: a clean target.

    A recording whose pauses hold hiss or hum would teach the model to keep it.
    """
    usable = len(audio) - len(audio) % frame
    if usable < 4 * frame:
        return False
    energy = 10 * np.log10(np.mean(audio[:usable].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    return float(np.percentile(energy, 95) - energy.min()) >= min_range_db


def speech_tasks(roots: dict[str, Path], out: Path, rng: np.random.Generator) -> list[tuple[Path, Path, dict]]:
    """Decode tasks for every voice of every :class:`VoiceSet` (8 % of training clips held out)."""
    tasks = []
    for voices in SPEECH_SETS:
        for sub, split in voices.speakers.items():
            by_name = "{speaker}" in voices.pattern
            folder = roots[voices.package] / voices.folder / ("" if by_name else sub)
            pattern = voices.pattern.format(speaker=sub) if by_name else voices.pattern
            files = sorted(f for f in folder.glob(pattern) if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if voices.max_clips:
                files = [files[i] for i in sorted(rng.permutation(len(files))[: voices.max_clips])]
            group = voices.prefix + sub if sub else voices.prefix.rstrip("_")
            for file in files:
                hold = split == "train" and rng.random() < VALIDATION_FRACTION
                name = str(file.relative_to(folder).with_suffix(".wav")).replace("/", "__")
                tasks.append((file, out / "speech" / group / name,
                              {"kind": "speech", "group": group, "sex": voices.sex, "package": voices.package,
                               "split": "validation" if hold else split, "min_seconds": voices.min_seconds}))
    return tasks


def noise_tasks(roots: dict[str, Path], out: Path) -> list[tuple[Path, Path, dict]]:
    """Decode tasks for every :class:`NoiseSet` file."""
    tasks = []
    for source, noise in NOISE_SETS.items():
        for file in sorted(roots[noise.package].glob(noise.pattern)):
            if file.suffix.lower() in AUDIO_GLOB_SUFFIXES and file.is_file():
                group = f"{source}_{file.stem}" if noise.per_file else source
                tasks.append((file, out / "noise" / source / (file.stem + ".wav"),
                              {"kind": "noise", "group": group, "type": noise.family, "package": noise.package,
                               "split": noise.split}))
    return tasks


def build(out: Path, cache: Path, own_speech: list[Path], own_noise: list[Path], jobs: int = 2,
          own_only: bool = False) -> dict:
    """Fetch, decode and split; returns and writes the manifest. ``own_only``: the user's folders alone,
    nothing fetched, decoded without ffmpeg, split by file."""
    tasks = []
    if not own_only:
        roots = fetch_packages(packages_needed(), cache)
        rng = np.random.default_rng(0)
        tasks = speech_tasks(roots, out, rng) + noise_tasks(roots, out)
    tasks += _own_folder_tasks(own_speech, out, "speech", own_only) + _own_folder_tasks(own_noise, out, "noise", own_only)
    convert = decode_without_ffmpeg if own_only else decode

    entries = []
    with ThreadPoolExecutor(jobs) as pool:
        durations = list(tqdm(pool.map(lambda t: convert(t[0], t[1]), tasks), total=len(tasks),
                              desc="decode to 16 kHz", unit="file"))
    pitches: dict[str, list[float]] = {}
    for (source, target, meta), seconds in zip(tasks, durations):
        if seconds <= 0:
            continue
        meta = dict(meta)
        if meta["kind"] == "speech":
            audio, _ = sf.read(str(target), dtype="float32")
            audio = trim_silence(audio)
            if len(audio) < meta.pop("min_seconds", 0.3) * SAMPLE_RATE or not is_clean_recording(audio):
                continue
            sf.write(str(target), audio, SAMPLE_RATE, subtype="FLOAT")
            seconds = len(audio) / SAMPLE_RATE
            pitches.setdefault(meta["group"], []).append(median_pitch(audio))
        entries.append({"path": str(target.relative_to(out)), "seconds": round(seconds, 3), **meta})
    sexes = {group: ("male" if np.nanmedian(values) < MALE_BELOW_HZ else "female")
             for group, values in pitches.items() if np.isfinite(values).any()}
    for entry in entries:
        if entry["kind"] == "speech" and entry.get("sex", "unknown") == "unknown" and entry["group"] in sexes:
            entry["sex"] = sexes[entry["group"]]
            entry["sex_estimated"] = True
    manifest = {"sample_rate": SAMPLE_RATE, "entries": entries,
                "voice_pitch_hz": {g: round(float(np.nanmedian(v)), 1) for g, v in pitches.items()
                                   if np.isfinite(v).any()}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


MALE_BELOW_HZ = 165.0  # a voice whose median pitch lies below this is counted as male


def median_pitch(audio: np.ndarray, frame: int = 640, hop: int = 320) -> float:
    """Median fundamental frequency (Hz) of the voiced frames, by autocorrelation (60-400 Hz); NaN if none."""
    lags = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 60)
    estimates = []
    energy_floor = np.mean(audio ** 2) * 0.3
    for start in range(0, len(audio) - frame, hop):
        x = audio[start:start + frame] - audio[start:start + frame].mean()
        if np.mean(x ** 2) < energy_floor:
            continue
        corr = np.correlate(x, x, "full")[frame - 1:]
        if corr[0] <= 0:
            continue
        values = corr[lags] / corr[0] * frame / (frame - lags)  # unbiased: long lags overlap less
        best = int(np.argmax(values))
        if values[best] > 0.5:
            estimates.append(SAMPLE_RATE / lags[best])
    return float(np.median(estimates)) if estimates else float("nan")


SPLITS = ["train"] * 8 + ["validation", "test"]


def _own_folder_tasks(folders: list[Path], out: Path, kind: str, split_files: bool = False) -> list:
    """User folders: each sub-folder is one speaker/source; split 80/10/10 by sub-folder, or with
    ``split_files`` by file within each (so that one speaker and one noise source still give every split)."""
    tasks = []
    for folder in folders:
        groups = sorted({p.parent for p in folder.rglob("*") if p.suffix.lower() in AUDIO_GLOB_SUFFIXES})
        for index, group_dir in enumerate(groups):
            group = f"own_{folder.name}_{group_dir.name}"
            files = [f for f in sorted(group_dir.glob("*")) if f.suffix.lower() in AUDIO_GLOB_SUFFIXES]
            for number, file in enumerate(files):
                meta = {"kind": kind, "group": group, "split": SPLITS[(number if split_files else index) % 10],
                        **({"sex": "unknown"} if kind == "speech" else {"type": "own"})}
                tasks.append((file, out / kind / group / (file.stem + ".wav"), meta))
    return tasks


def decode_without_ffmpeg(source: Path, target: Path) -> float:
    """Any file libsndfile reads to 16 kHz mono float WAV (soxr through the engine's resampler); 0 if unusable."""
    from rtdenoise.engine.resample import StreamResampler

    try:
        audio, rate = sf.read(str(source), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return 0.0
    mono = audio.mean(axis=1)[None]
    resampler = StreamResampler(rate, SAMPLE_RATE, 1)
    audio = np.concatenate([resampler.process(mono), resampler.flush()], axis=1)[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(target), audio, SAMPLE_RATE, subtype="FLOAT")
    return len(audio) / SAMPLE_RATE


def summarise(manifest: dict) -> str:
    """Minutes per split, kind and group, for the log."""
    table: dict[tuple, float] = {}
    for e in manifest["entries"]:
        key = (e["split"], e["kind"], e["group"])
        table[key] = table.get(key, 0.0) + e["seconds"] / 60
    return "\n".join(f"{s:<10} {k:<6} {g:<28} {m:7.1f} min" for (s, k, g), m in sorted(table.items()))


def summary_line(manifest: dict, out: Path) -> str:
    """One line: what was written where, per split."""
    parts = []
    for split in ("train", "validation", "valvoice", "test", "ood", "expressive"):
        entries = [e for e in manifest["entries"] if e["split"] == split]
        if not entries:
            continue
        voices = {e["group"] for e in entries if e["kind"] == "speech"}
        sources = {e["group"] for e in entries if e["kind"] == "noise"}
        speech = sum(e["seconds"] for e in entries if e["kind"] == "speech") / 60
        noise = sum(e["seconds"] for e in entries if e["kind"] == "noise") / 60
        parts.append(f"{split} {len(voices)} voices {speech:.0f} min + {len(sources)} noise sources {noise:.0f} min")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2 ** 30
    return f"corpus: {'; '.join(parts)}; {size:.1f} GB in {out} (manifest: {out / 'manifest.json'})"


def markdown_report(manifest: dict) -> str:
    """The corpus as Markdown: per split, each voice (sex, minutes, package) and each noise family's sources."""
    lines = ["| split | voices (sex, minutes) | noise sources by family (minutes) |", "|---|---|---|"]
    for split in ("train", "validation", "valvoice", "test", "ood", "expressive"):
        entries = [e for e in manifest["entries"] if e["split"] == split]
        if not entries:
            continue
        voices: dict[str, list] = {}
        for e in entries:
            if e["kind"] == "speech":
                voice = voices.setdefault(e["group"], [e.get("sex", "?"), 0.0])
                voice[1] += e["seconds"] / 60
        families: dict[str, list] = {}
        for e in entries:
            if e["kind"] == "noise":
                family = families.setdefault(e.get("type", "?"), [set(), 0.0])
                family[0].add(e["group"])
                family[1] += e["seconds"] / 60
        voice_text = ", ".join(f"{g} ({sex[0]}, {m:.1f})" for g, (sex, m) in sorted(voices.items()))
        noise_text = ", ".join(f"{f}: {len(groups)} ({m:.1f})" for f, (groups, m) in sorted(families.items()))
        lines.append(f"| {split} | {len(voices)} voices: {voice_text} | {noise_text or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument("--cache", type=Path, default=Path("data/debs"), help="where packages are unpacked")
    parser.add_argument("--speech", type=Path, action="append", default=[], help="your own clean speech folder")
    parser.add_argument("--noise", type=Path, action="append", default=[], help="your own noise folder")
    parser.add_argument("--own-only", action="store_true",
                        help="only your --speech and --noise folders: nothing fetched, no ffmpeg, each folder's "
                             "files split 80/10/10 into train/validation/test (a corpus in seconds)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", action="store_true",
                        help="print the existing corpus's voices and noises per split as Markdown, and stop")
    args = parser.parse_args(argv)
    if args.report:
        manifest_path = args.out / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"{args.out}: no corpus here (no manifest.json)")
        print(markdown_report(json.loads(manifest_path.read_text())))
        return 0
    for folder in args.speech + args.noise:  # before any package is fetched
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder")
    if args.own_only and not (args.speech and args.noise):
        raise ValueError("--own-only needs at least one --speech and one --noise folder")
    if not args.own_only and not shutil.which("ffmpeg"):
        raise RuntimeError("ffmpeg is needed to decode G.722 (apt-get install ffmpeg), or use --own-only "
                           "with your own folders")
    manifest = build(args.out, args.cache, args.speech, args.noise, args.jobs, args.own_only)
    print(summarise(manifest))
    print(summary_line(manifest, args.out))
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.corpus"))
