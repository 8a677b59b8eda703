"""Build the clean-speech and noise corpus from Debian packages or your own folders.

``python -m training.corpus --out data/corpus`` fetches real recorded speech and
noise with ``apt-get download`` (a fixed list, none reserved for evaluation),
decodes everything to 16 kHz mono WAV with ffmpeg and writes ``manifest.json``,
which splits by *speaker* and by *noise source* so that the test split holds
voices and noises training never saw. Speech: five Asterisk prompt voices and,
for training only, nineteen KLettres volunteer voices (Hungarian's 82 clips all
fail the hiss check; id and nn hold no audio). Prompts whose pauses hold hiss
are dropped.

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
# Only the packages named in SPEAKERS and NOISES below are ever fetched; none of them is
# among those DATA.md reserves for independent evaluation, and no user input adds packages.

# speaker -> (package, folder inside it, sex). Splits by speaker: the test voices are unseen.
SPEAKERS = {
    "en_allison": ("asterisk-core-sounds-en-g722", "usr/share/asterisk/sounds/en_US_f_Allison", "female"),
    "es_allison": ("asterisk-core-sounds-es-g722", "usr/share/asterisk/sounds/es_MX_f_Allison", "female"),
    "ru_female": ("asterisk-core-sounds-ru-g722", "usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU", "female"),
    "fr_june": ("asterisk-core-sounds-fr-g722", "usr/share/asterisk/sounds/fr_CA_f_June", "female"),
    "it_carlo": ("asterisk-core-sounds-it-g722", "usr/share/asterisk/sounds/it_IT_m_Carlo", "male"),
}
SPEAKER_SPLIT = {"en_allison": "train", "es_allison": "train", "ru_female": "train",
                 "fr_june": "test", "it_carlo": "test"}
VALIDATION_FRACTION = 0.08  # utterances of the training speakers held out for validation
# KLettres: spoken letters and syllables, one volunteer voice per language (male and female),
# 44.1 kHz Ogg. Training voices only: they widen pitch, timbre and microphone variety.
KLETTRES_PACKAGE, KLETTRES_FOLDER = "klettres-data", "usr/share/klettres"
MIN_UTTERANCE_SECONDS = {"asterisk": 0.5, "klettres": 0.3}

_WES = "usr/share/games/wesnoth/1.16/data/core/sounds"


def _lmms(folder: str, kind: str, split: str) -> tuple[str, str, str, str]:
    return "lmms-common", f"usr/share/lmms/samples/{folder}/*", kind, split


def _moh(track: str, kind: str, split: str) -> tuple[str, str, str, str]:
    return "asterisk-moh-opsound-g722", f"usr/share/asterisk/moh/{track}.g722", kind, split


# noise source -> (package, glob inside it, noise type, split). Splits by source.
NOISES = {
    "lmms_drums": _lmms("drums", "percussion", "train"),
    "lmms_basses": _lmms("basses", "tonal", "train"),
    "lmms_instruments": _lmms("instruments", "tonal", "train"),
    "lmms_effects": _lmms("effects", "effects", "train"),
    "lmms_misc": _lmms("misc", "effects", "train"),
    "lmms_shapes": _lmms("shapes", "tonal", "train"),
    "lmms_stringsnpads": _lmms("stringsnpads", "tonal", "train"),
    "moh_cold_day": _moh("macroform-cold_day", "music", "train"),
    "moh_robot_dity": _moh("macroform-robot_dity", "music", "train"),
    "moh_simplicity": _moh("macroform-the_simplicity", "music", "validation"),
    "moh_morning_coffee": _moh("manolo_camp-morning_coffee", "music", "test"),
    "moh_system": _moh("reno_project-system", "music", "test"),
    "wesnoth_birds": ("wesnoth-1.16-data", f"{_WES}/ambient/birds*.ogg", "ambience", "train"),
    "wesnoth_wardrums": ("wesnoth-1.16-data", f"{_WES}/ambient/wardrums.ogg", "percussion", "train"),
    "wesnoth_morning": ("wesnoth-1.16-data", f"{_WES}/ambient/morning.ogg", "ambience", "validation"),
    "wesnoth_campfire": ("wesnoth-1.16-data", f"{_WES}/ambient/campfire.ogg", "ambience", "test"),
    "wesnoth_ship": ("wesnoth-1.16-data", f"{_WES}/ambient/ship.ogg", "ambience", "test"),
    "wesnoth_night": ("wesnoth-1.16-data", f"{_WES}/ambient/night.ogg", "ambience", "test"),
    "wesnoth_battle": ("wesnoth-1.16-data", f"{_WES}/*.ogg", "effects", "train"),
    "lmms_latin": _lmms("latin", "percussion", "validation"),
    "tux_crowd": ("tuxfootball", "usr/share/games/tuxfootball/sound/crowd*.wav", "crowd", "test"),
    "tux_ingame": ("tuxfootball", "usr/share/games/tuxfootball/sound/ingame.ogg", "crowd", "test"),
}
AUDIO_GLOB_SUFFIXES = {".wav", ".ogg", ".flac", ".g722", ".mp3", ".oga", ".aif", ".aiff"}


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
            (root / ".unpacked").touch()
        roots[package] = root
    return roots


def decode(source: Path, target: Path) -> float:
    """Any audio file (G.722 too) to 16 kHz mono float WAV; returns seconds (0 if unusable)."""
    if target.exists():
        return sf.info(str(target)).duration
    target.parent.mkdir(parents=True, exist_ok=True)
    forced = ["-f", "g722"] if source.suffix == ".g722" else []
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


def build(out: Path, cache: Path, own_speech: list[Path], own_noise: list[Path], jobs: int = 2) -> dict:
    """Fetch, decode and split; returns and writes the manifest."""
    packages = {p for p, _, _ in SPEAKERS.values()} | {n[0] for n in NOISES.values()} | {KLETTRES_PACKAGE}
    roots = fetch_packages(packages, cache)
    tasks: list[tuple[Path, Path, dict]] = []
    rng = np.random.default_rng(0)
    for speaker, (package, folder, sex) in SPEAKERS.items():
        files = sorted((roots[package] / folder).rglob("*.g722"))
        held_out = rng.random(len(files)) < VALIDATION_FRACTION
        for file, hold in zip(files, held_out):
            split = SPEAKER_SPLIT[speaker]
            split = "validation" if split == "train" and hold else split
            name = str(file.relative_to(roots[package] / folder).with_suffix(".wav")).replace("/", "__")
            tasks.append((file, out / "speech" / speaker / name,
                          {"kind": "speech", "group": speaker, "sex": sex, "split": split}))
    for language in sorted(d for d in (roots[KLETTRES_PACKAGE] / KLETTRES_FOLDER).iterdir() if d.is_dir()):
        files = sorted(language.rglob("*.ogg"))
        for file, hold in zip(files, rng.random(len(files)) < VALIDATION_FRACTION):
            name = str(file.relative_to(language).with_suffix(".wav")).replace("/", "__")
            tasks.append((file, out / "speech" / f"klettres_{language.name}" / name,
                          {"kind": "speech", "group": f"klettres_{language.name}", "sex": "unknown",
                           "split": "validation" if hold else "train"}))
    for source, (package, pattern, noise_type, split) in NOISES.items():
        for file in sorted(roots[package].glob(pattern)):
            if file.suffix.lower() in AUDIO_GLOB_SUFFIXES and file.is_file():
                tasks.append((file, out / "noise" / source / (file.stem + ".wav"),
                              {"kind": "noise", "group": source, "type": noise_type, "split": split}))
    tasks += _own_folder_tasks(own_speech, out, "speech") + _own_folder_tasks(own_noise, out, "noise")

    entries = []
    with ThreadPoolExecutor(jobs) as pool:
        durations = list(tqdm(pool.map(lambda t: decode(t[0], t[1]), tasks), total=len(tasks),
                              desc="decode to 16 kHz", unit="file"))
    for (source, target, meta), seconds in zip(tasks, durations):
        if seconds <= 0:
            continue
        if meta["kind"] == "speech":
            audio, _ = sf.read(str(target), dtype="float32")
            audio = trim_silence(audio)
            shortest = MIN_UTTERANCE_SECONDS["klettres" if meta["group"].startswith("klettres") else "asterisk"]
            if len(audio) < shortest * SAMPLE_RATE or not is_clean_recording(audio):
                continue
            sf.write(str(target), audio, SAMPLE_RATE, subtype="FLOAT")
            seconds = len(audio) / SAMPLE_RATE
        entries.append({"path": str(target.relative_to(out)), "seconds": round(seconds, 3), **meta})
    manifest = {"sample_rate": SAMPLE_RATE, "entries": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _own_folder_tasks(folders: list[Path], out: Path, kind: str) -> list:
    """User folders: each sub-folder is one speaker/source; split 80/10/10 by sub-folder."""
    tasks = []
    for folder in folders:
        groups = sorted({p.parent for p in folder.rglob("*") if p.suffix.lower() in AUDIO_GLOB_SUFFIXES})
        for index, group_dir in enumerate(groups):
            split = ["train"] * 8 + ["validation", "test"]
            group = f"own_{folder.name}_{group_dir.name}"
            for file in sorted(group_dir.glob("*")):
                if file.suffix.lower() in AUDIO_GLOB_SUFFIXES:
                    meta = {"kind": kind, "group": group, "split": split[index % 10],
                            **({"sex": "unknown"} if kind == "speech" else {"type": "own"})}
                    tasks.append((file, out / kind / group / (file.stem + ".wav"), meta))
    return tasks


def summarise(manifest: dict) -> str:
    """Minutes per split, kind and group, for the log."""
    table: dict[tuple, float] = {}
    for e in manifest["entries"]:
        key = (e["split"], e["kind"], e["group"])
        table[key] = table.get(key, 0.0) + e["seconds"] / 60
    return "\n".join(f"{s:<10} {k:<6} {g:<20} {m:7.1f} min" for (s, k, g), m in sorted(table.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument("--cache", type=Path, default=Path("data/debs"), help="where packages are unpacked")
    parser.add_argument("--speech", type=Path, action="append", default=[], help="your own clean speech folder")
    parser.add_argument("--noise", type=Path, action="append", default=[], help="your own noise folder")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    for folder in args.speech + args.noise:  # before any package is fetched
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder")
    if not shutil.which("ffmpeg"):
        raise RuntimeError("ffmpeg is needed to decode G.722 (apt-get install ffmpeg)")
    manifest = build(args.out, args.cache, args.speech, args.noise, args.jobs)
    print(summarise(manifest))
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.corpus"))
