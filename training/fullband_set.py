"""A 48 kHz out-of-domain test set whose speech and noise really reach above 8 kHz.

Pipeline step 2 of 5 (corpus -> dataset -> train -> evaluate -> ship): dataset.

    python -m training.fullband_set --cache data/debs --out data/lab/fullband.pt

Speech: the Mandarin syllables of gcin-voice (44.1 kHz; a voice and a package that nothing
in training touches), joined into utterances with short pauses. Noise: the 44.1/48 kHz
recordings of the out-of-domain noise packages (extremetuxracer, frozen-bubble, lincity-ng)
plus white and pink noise. A file is used only if its spectrum, not its header, shows
content above 8 kHz: its 8-16 kHz level within ``MAX_HIGH_BAND_DROP_DB`` of its 0-8 kHz level.
Everything is resampled to 48 kHz (scipy's polyphase resampler) and mixed at -5..15 dB SNR
(measured over the full band). Each syllable loses its DC offset and anything under
``LOW_CUT_HZ`` (a microphone chain's low cut; some gcin-voice syllables carry a DC offset of
half their level, which SI-SDR would otherwise ask a denoiser to keep). Saved in the lab
format with ``sample_rate`` in each clip's metadata; ``python -m training.evaluate --data
data/lab/fullband.pt`` scores it fullband.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from training.dataset import save_pairs
from training.scoring.fullband_metrics import resample
from training.mixing.synthetic_noise import make

RATE = 48000
MAX_HIGH_BAND_DROP_DB = 45.0
MIN_SPEECH_CLIPS = 10
SPEECH = ("gcin-voice", "usr/share/gcin-voice/ogg/*/*.ogg", "gcin_zh", "female")
NOISES = {  # name -> (package, pattern, family)
    "tuxracer_slides": ("extremetuxracer-data", "usr/share/games/etr/sounds/*_slide.wav", "wind_rain_water"),
    "tuxracer_music": ("extremetuxracer-data", "usr/share/games/etr/music/*.ogg", "music"),
    "frozen_applause": ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/applause.ogg", "crowd"),
    "frozen_typewriter": ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/typewriter.ogg", "household"),
    "lincity_music": ("lincity-ng-data", "usr/share/games/lincity-ng/music/*/*.ogg", "music"),
    "lincity_power": ("lincity-ng-data", "usr/share/games/lincity-ng/sounds/Power*.wav", "machines"),
}
SYNTHETIC = ("white", "pink")
SNRS = (-5.0, 0.0, 5.0, 10.0, 15.0)
FLOOR_DB = 55.0  # the clean speech's own noise floor, this far below its level
LOW_CUT_HZ = 40.0


def without_rumble(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """``audio`` without its DC offset and what lies under ``LOW_CUT_HZ`` (zero-phase Butterworth, order 4)."""
    from scipy.signal import butter, sosfiltfilt

    highpass = butter(4, LOW_CUT_HZ, "highpass", fs=rate, output="sos")
    return sosfiltfilt(highpass, audio - audio.mean()).astype(np.float32)


def resample_to(audio: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    return (audio if rate == target else resample(audio, rate, target)).astype(np.float32)


def high_band_drop_db(audio: np.ndarray, rate: int) -> float:
    """How far the 8-16 kHz level lies below the 0-8 kHz level (dB): the real bandwidth, not the header's."""
    power = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    low, high = power[freqs < 8000].sum(), power[(freqs >= 8000) & (freqs < 16000)].sum()
    return float(10 * np.log10((low + 1e-20) / (high + 1e-20)))


def read_fullband(path: Path) -> np.ndarray | None:
    """The file as 48 kHz mono, or None when it has no real content above 8 kHz."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        return None
    audio = audio.mean(axis=1)
    if rate < 32000 or len(audio) < rate // 10 or high_band_drop_db(audio, rate) > MAX_HIGH_BAND_DROP_DB:
        return None
    return resample_to(audio, rate)


def package_files(cache: Path, package: str, pattern: str, required: bool = True) -> list[Path]:
    root = cache / package
    if not root.is_dir():
        if not required:
            return []
        raise ValueError(f"{root}: package not unpacked (python -m training.corpus fetches it)")
    return sorted(root.glob(pattern))


def utterance(syllables: list[np.ndarray], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Syllables joined with 60-250 ms pauses up to ``seconds``, each at a level within ±3 dB."""
    pieces, total, length = [], 0, int(seconds * RATE)
    while total < length:
        clip = syllables[rng.integers(len(syllables))]
        clip = clip / (np.sqrt(np.mean(clip ** 2)) + 1e-9) * 10 ** (rng.uniform(-3, 3) / 20)
        pause = np.zeros(int(rng.uniform(0.06, 0.25) * RATE), np.float32)
        pieces += [clip.astype(np.float32), pause]
        total += len(clip) + len(pause)
    return np.concatenate(pieces)[:length]


def build(cache: Path, clips: int = 40, seconds: float = 4.0, seed: int = 0, rate: int = RATE) -> tuple[list, list[dict]]:
    """``clips`` mixtures ``(noisy, clean)`` made at 48 kHz, then taken to ``rate``, and their metadata."""
    rng = np.random.default_rng(seed)
    package, pattern, speaker, sex = SPEECH
    syllables = [without_rumble(a) for a in (read_fullband(p) for p in package_files(cache, package, pattern))
                 if a is not None]
    if len(syllables) < MIN_SPEECH_CLIPS:
        raise ValueError(f"{cache / package}: fewer than {MIN_SPEECH_CLIPS} clips with content above 8 kHz")
    sources: dict[str, tuple[str, list]] = {}  # noise name -> (family, its recordings); None: synthetic
    for name, (noise_package, noise_pattern, family) in NOISES.items():
        recordings = [a for a in map(read_fullband, package_files(cache, noise_package, noise_pattern, False))
                      if a is not None and len(a) >= RATE // 4]
        if recordings:
            sources[name] = (family, recordings)
    for kind in SYNTHETIC:
        sources[f"synthetic_{kind}"] = ("coloured_synthetic", [None])
    names = sorted(sources)
    pairs, metas = [], []
    for index in range(clips):
        clean = utterance(syllables, seconds, rng)
        clean = (clean + make("white", len(clean), rng) * np.sqrt(np.mean(clean ** 2)) * 10 ** (-FLOOR_DB / 20)) \
            * 10 ** (rng.uniform(-28, -18) / 20)  # a microphone's floor, not digital silence, between syllables
        name = names[index % len(names)]  # every source alike, each at every SNR in turn
        family, recordings = sources[name]
        source = recordings[rng.integers(len(recordings))]
        if source is None:
            noise = make(name.split("_", 1)[1], len(clean), rng)  # white/pink: the spectrum's shape is rate-free
        else:
            start = rng.integers(0, max(1, len(source) - len(clean)))
            noise = np.resize(source[start:], len(clean))  # loops a short recording
        snr = SNRS[(index // len(names)) % len(SNRS)]
        noise = noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12) * np.sqrt(np.mean(clean ** 2)) * 10 ** (-snr / 20)
        noisy = clean + noise
        peak = np.max(np.abs(noisy))
        if peak > 0.99:
            noisy, clean = noisy * 0.99 / peak, clean * 0.99 / peak
        pairs.append(tuple(torch.from_numpy(resample_to(x, RATE, rate))[None] for x in (noisy, clean)))
        metas.append({"speaker": speaker, "sex": sex, "noise": name, "noise_type": family, "snr_db": snr,
                      "sample_rate": rate})
    return pairs, metas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("data/debs"), help="where the corpus unpacked packages")
    parser.add_argument("--out", type=Path, default=Path("data/lab/fullband.pt"))
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=int, default=RATE, help="sample rate of the set (made at 48 kHz, then resampled)")
    args = parser.parse_args(argv)
    if args.rate < 32000:
        parser.error("--rate: a fullband set needs 32 kHz or more (below it the engine keeps no high band)")
    pairs, metas = build(args.cache, args.clips, args.seconds, rate=args.rate)
    save_pairs(pairs, args.out, metas)
    noises = sorted({m["noise"] for m in metas})
    print(f"wrote {len(pairs)} mixtures of {args.seconds:g} s at {args.rate} Hz to {args.out} "
          f"(noises: {', '.join(noises)})")
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.fullband_set"))
