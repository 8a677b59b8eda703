"""The noisy-audio tensor dataset: mixing, the lab format, splits.

Pipeline step 2 of 5 (corpus -> dataset -> train -> evaluate -> ship): dataset.

The lab format is a ``torch.save``d list of ``(noisy, clean)`` float tensors of
shape ``(1, N)`` at 16 kHz. :class:`Mixer` makes such pairs from clean speech
and noise (SNR -5..20 dB, level and pitch augmentation, synthetic noises on
top); :class:`OnTheFlyDataset` mixes fresh pairs every epoch (as a denoising autoencoder corrupts its input).
"""
from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly
from tqdm import tqdm

from rtdenoise.errors import finite_float, require_at_least, require_positive
from rtdenoise.models.registry import load_weights_only

from training.mixing import synthetic_noise
from training.mixing.augment import RecordingChain
from training.mixing.pauses import crossfaded, kept_runs
from training.recordings.sources import DIPHONE_GROUPS

SAMPLE_RATE = 16000
JOIN_FADE = SAMPLE_RATE // 200  # 5 ms cross-fades where pauses were cut out (continuous speech)
Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Clip:
    audio: np.ndarray
    group: str          # speaker or noise source
    label: str          # sex for speech, noise type for noise


@dataclass
class MixConfig:
    seconds: float = 4.0
    snr_db: tuple[float, float] = (-5.0, 20.0)
    level_db: tuple[float, float] = (-38.0, -18.0)  # RMS of the clean speech, dBFS
    pitch_shift_probability: float = 0.4            # lower the voice (male-like) this often
    pitch_factor: tuple[float, float] = (0.68, 0.92)
    synthetic_probability: float = 0.35              # add a synthetic noise on top
    synthetic_only_probability: float = 0.15
    babble_probability: float = 0.1
    silence_probability: float = 0.05                # noise-only examples
    balance_speakers: bool = False                   # every voice equally often (not every second of speech)
    raise_pitch_probability: float = 0.0             # of the pitch shifts, this share raises the voice
    synthetic_kinds: tuple[str, ...] = synthetic_noise.KINDS
    clean_probability: float = 0.0                   # noise 80 dB down: clean speech must pass untouched
    balance_noise_families: bool = False             # every noise family equally often, then its sources evenly
    continuous_probability: float = 0.0              # the speaker's utterances with every pause cut out (read
                                                     # speech that never leaves the noise alone) this often
    diphone_voice_share: float | None = None         # with balance_speakers: the share of mixtures spoken by a
                                                     # Festival diphone voice (None: each voice equally often)


@dataclass
class CorpusSplit:
    speech: list[Clip] = field(default_factory=list)
    noise: list[Clip] = field(default_factory=list)

    def seconds(self) -> tuple[float, float]:
        return (sum(len(c.audio) for c in self.speech) / SAMPLE_RATE,
                sum(len(c.audio) for c in self.noise) / SAMPLE_RATE)


def load_corpus_split(corpus: str | Path, split: str) -> CorpusSplit:
    """Clips of one split (train / validation / test) from a corpus folder or ``.npz`` pack."""
    corpus = Path(corpus)
    if corpus.suffix == ".npz":
        return _load_pack_split(corpus, split)
    packs = sorted(corpus.glob("*.npz")) if corpus.is_dir() else []
    if packs and not (corpus / "manifest.json").is_file():  # a folder of packs (save_pack's parts)
        result = CorpusSplit()
        for pack in packs:
            part = _load_pack_split(pack, split)
            result.speech += part.speech
            result.noise += part.noise
        return result
    if not (corpus / "manifest.json").is_file():
        raise ValueError(f"{corpus}: not a corpus folder (no manifest.json); build one with "
                         f"python -m training.corpus, or give a --pack .npz")
    manifest = json.loads((corpus / "manifest.json").read_text())
    result = CorpusSplit()
    for entry in manifest["entries"]:
        if entry["split"] != split:
            continue
        import soundfile as sf  # only here: packs load without it

        audio, rate = sf.read(str(corpus / entry["path"]), dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise ValueError(f"{entry['path']}: {rate} Hz, corpus must be {SAMPLE_RATE} Hz")
        audio = audio.mean(axis=1)
        if entry["kind"] == "speech":
            result.speech.append(Clip(audio, entry["group"], entry.get("sex", "unknown")))
        else:
            result.noise.append(Clip(audio, entry["group"], entry.get("type", "other")))
    return result


def save_pack(corpus: str | Path, path: str | Path, splits: tuple[str, ...] = ("train", "validation"),
              minutes_per_group: float = 7.0, noise_minutes_per_group: float = 2.0, seed: int = 0,
              parts: int = 1, mulaw_noise: bool = False) -> list[Path]:
    """Compact ``.npz`` packs of some splits (for machines without ffmpeg/soundfile, e.g. a lent GPU).

    At most ``minutes_per_group`` of each speaker / noise source, chosen at random; speech
    is int16; noise int16 or, with ``mulaw_noise``, 8-bit mu-law (half the size; its
    quantisation noise is noise on noise). ``parts > 1`` spreads the clips over that many
    files of about equal size (``NAME-1-of-3.npz`` ...): a folder of them is a corpus.
    """
    rng = np.random.default_rng(seed)
    chosen: list[tuple[dict, np.ndarray]] = []
    for split in splits:
        data = load_corpus_split(corpus, split)
        for kind, clips in (("speech", data.speech), ("noise", data.noise)):
            used: dict[str, float] = {}
            limit = (minutes_per_group if kind == "speech" else noise_minutes_per_group) * 60
            limit *= 1.0 if split == "train" else 0.25
            for index in rng.permutation(len(clips)):
                clip = clips[index]
                seconds = len(clip.audio) / SAMPLE_RATE
                if used.get(clip.group, 0.0) + seconds > limit:
                    if used.get(clip.group, 0.0) > 0:
                        continue
                    clip = Clip(clip.audio[: int(limit * SAMPLE_RATE)], clip.group, clip.label)
                used[clip.group] = used.get(clip.group, 0.0) + len(clip.audio) / SAMPLE_RATE
                audio = np.clip(clip.audio, -1, 1)
                stored = (_mulaw_encode(audio) if kind == "noise" and mulaw_noise
                          else np.round(audio * 32767).astype(np.int16))
                chosen.append(({"split": split, "kind": kind, "group": clip.group, "label": clip.label}, stored))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [path] if parts == 1 else [path.with_name(f"{path.stem}-{i + 1}-of-{parts}.npz") for i in range(parts)]
    shares: list[list[tuple[dict, np.ndarray]]] = [[] for _ in names]
    for item in sorted(chosen, key=lambda item: -item[1].nbytes):  # largest first, into the lightest part
        min(shares, key=lambda share: sum(a.nbytes for _, a in share)).append(item)
    for name, share in zip(names, shares):
        np.savez_compressed(name, meta=np.array(json.dumps([m for m, _ in share])),
                            **{f"a{i}": a for i, (_, a) in enumerate(share)})
    return names


MULAW = 255.0


def _mulaw_encode(audio: np.ndarray) -> np.ndarray:
    return np.round(np.sign(audio) * np.log1p(MULAW * np.abs(audio)) / np.log1p(MULAW) * 127).astype(np.int8)


def _mulaw_decode(codes: np.ndarray) -> np.ndarray:
    y = codes.astype(np.float32) / 127
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MULAW)) / MULAW).astype(np.float32)


def _load_pack_split(path: Path, split: str) -> CorpusSplit:
    result = CorpusSplit()
    with np.load(path) as pack:
        for index, meta in enumerate(json.loads(str(pack["meta"]))):
            if meta["split"] == split:
                stored = pack[f"a{index}"]
                audio = _mulaw_decode(stored) if stored.dtype == np.int8 else stored.astype(np.float32) / 32767
                clip = Clip(audio, meta["group"], meta["label"])
                (result.speech if meta["kind"] == "speech" else result.noise).append(clip)
    return result


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def scale_pitch(audio: np.ndarray, factor: float) -> np.ndarray:
    """Resample by 1/factor and play at the same rate: pitch and formants scale by ``factor``.

    Polyphase with its anti-aliasing filter (factor within 1/64 of the one asked): a raised voice's band
    above 8 kHz / factor is removed, not folded back into the band as interpolation would fold it."""
    ratio = Fraction(1.0 / factor).limit_denominator(64)
    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


class Mixer:
    """Makes ``(noisy, clean, meta)`` mixtures from a corpus split."""

    def __init__(self, split: CorpusSplit, config: MixConfig | None = None, synthetic: bool = True,
                 chain: RecordingChain | None = None) -> None:
        if not split.speech or (not split.noise and not synthetic):
            raise ValueError("a split needs speech and noise clips to mix")
        self.split = split
        self.config = config or MixConfig()
        self.synthetic = synthetic
        self.chain = chain
        self.length = int(self.config.seconds * SAMPLE_RATE)
        self.by_noise_group: dict[str, list[Clip]] = {}
        self.groups_by_family: dict[str, set[str]] = {}
        for clip in split.noise:
            self.by_noise_group.setdefault(clip.group, []).append(clip)
            self.groups_by_family.setdefault(clip.label, set()).add(clip.group)
        self.by_speaker: dict[str, list[Clip]] = {}
        for clip in split.speech:
            self.by_speaker.setdefault(clip.group, []).append(clip)
        speakers = sorted(self.by_speaker)
        diphone = [speaker for speaker in speakers if speaker in DIPHONE_GROUPS]
        others = [speaker for speaker in speakers if speaker not in DIPHONE_GROUPS]
        # the voices drawn evenly; with diphone_voice_share (and both kinds here), the diphone voices and the rest
        self.speaker_pools = (diphone, others) if self.config.diphone_voice_share is not None and diphone \
            and others else (speakers,)
        # Every second of speech is equally likely to start a mixture, so a voice
        # recorded as many short clips does not outweigh one with long prompts.
        self.speech_ends = np.cumsum([len(c.audio) for c in split.speech])

    def speech(self, rng: np.random.Generator) -> tuple[np.ndarray, Clip]:
        """Utterances of one speaker laid end to end with short pauses, ``length`` samples."""
        if self.config.balance_speakers:
            same_speaker = self.by_speaker[self.balanced_speaker(rng)]
            first = same_speaker[rng.integers(len(same_speaker))]
        else:
            pick = int(np.searchsorted(self.speech_ends, rng.integers(self.speech_ends[-1]), side="right"))
            first = self.split.speech[pick]
            same_speaker = self.by_speaker[first.group]
        if self.config.continuous_probability and rng.random() < self.config.continuous_probability:
            return self.continuous_speech(rng, first, same_speaker), first
        out = np.zeros(self.length, np.float32)
        position = int(rng.integers(0, SAMPLE_RATE // 2))
        clip = first
        while position < self.length:
            piece = clip.audio
            if len(piece) > self.length:
                start = int(rng.integers(0, len(piece) - self.length))
                piece = piece[start:start + self.length]
            take = min(len(piece), self.length - position)
            out[position:position + take] = piece[:take]
            position += take + int(rng.integers(SAMPLE_RATE // 10, SAMPLE_RATE // 2))
            clip = same_speaker[rng.integers(len(same_speaker))]
        return out, first

    def balanced_speaker(self, rng: np.random.Generator) -> str:
        """A voice, each equally often; with ``diphone_voice_share``, one of the diphone voices that share of the
        time (when the split has both kinds)."""
        speakers = self.speaker_pools[0]
        if len(self.speaker_pools) == 2 and rng.random() >= self.config.diphone_voice_share:
            speakers = self.speaker_pools[1]
        return speakers[rng.integers(len(speakers))]

    def continuous_speech(self, rng: np.random.Generator, first: Clip, same_speaker: list[Clip]) -> np.ndarray:
        """``length`` samples of the speaker's utterances back to back, every pause inside and between
        them cut out and the joins cross-faded (silence only if the speaker's clips are all silent)."""
        parts, total, clip = [], 0, first
        for _ in range(64 + self.length // SAMPLE_RATE * 8):  # enough for the shortest clips; ends on silent ones
            runs = kept_runs(clip.audio)
            parts += runs
            total += sum(len(run) for run in runs)
            if total >= self.length + JOIN_FADE * len(parts):
                break
            clip = same_speaker[rng.integers(len(same_speaker))]
        speech = crossfaded(parts, JOIN_FADE)
        if len(speech) > self.length:
            start = int(rng.integers(0, len(speech) - self.length + 1))
            speech = speech[start:start + self.length]
        return np.pad(speech, (0, self.length - len(speech))).astype(np.float32)

    def noise(self, rng: np.random.Generator) -> tuple[np.ndarray, str, str]:
        """A noise segment of ``length`` samples (looped if short); returns (noise, group, type)."""
        cfg = self.config
        if self.synthetic and (not self.split.noise or rng.random() < cfg.synthetic_only_probability):
            kind = cfg.synthetic_kinds[rng.integers(len(cfg.synthetic_kinds))]
            return synthetic_noise.make(kind, self.length, rng), f"synthetic_{kind}", "coloured_synthetic"
        if cfg.balance_noise_families:  # a family first, so thin ones (wind, crowd) are not drowned by big ones
            families = sorted(self.groups_by_family)
            groups = sorted(self.groups_by_family[families[rng.integers(len(families))]])
        else:
            groups = sorted(self.by_noise_group)
        group = groups[rng.integers(len(groups))]
        clips = self.by_noise_group[group]
        clip = clips[rng.integers(len(clips))]
        audio = clip.audio
        if len(audio) < self.length:
            audio = np.tile(audio, self.length // max(1, len(audio)) + 2)
        start = int(rng.integers(0, len(audio) - self.length + 1))
        noise = audio[start:start + self.length].copy()
        if _rms(noise) < 1e-4:  # a silent stretch: try once more with white noise under it
            noise += synthetic_noise.make("pink", self.length, rng) * 1e-3
        if self.synthetic and rng.random() < cfg.synthetic_probability:
            kind = synthetic_noise.KINDS[rng.integers(len(synthetic_noise.KINDS))]
            extra = synthetic_noise.make(kind, self.length, rng)
            noise = noise / _rms(noise) + extra * 10 ** (-rng.uniform(3, 15) / 20)
        return noise.astype(np.float32), clip.group, clip.label

    def mix(self, rng: np.random.Generator, snr_db: float | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        cfg = self.config
        clean, first = self.speech(rng)
        pitch = 1.0
        if rng.random() < cfg.pitch_shift_probability:
            pitch = float(rng.uniform(*cfg.pitch_factor))
            if rng.random() < cfg.raise_pitch_probability:
                pitch = 1.0 / pitch
            stretched = scale_pitch(clean, pitch)[: self.length]
            clean = np.pad(stretched, (0, self.length - len(stretched)))
        if rng.random() < cfg.silence_probability:
            clean = clean * 0.0
        noise, noise_group, noise_type = self.noise(rng)
        if self.synthetic and rng.random() < cfg.babble_probability:
            babble = sum(self.speech(rng)[0] for _ in range(int(rng.integers(3, 6))))
            noise = noise / _rms(noise) + babble / _rms(babble) * 0.7
            noise_type = noise_type + "+babble"
        snr = float(rng.uniform(*cfg.snr_db)) if snr_db is None else snr_db
        if snr_db is None and cfg.clean_probability and rng.random() < cfg.clean_probability:
            snr = 80.0
        level = 10 ** (rng.uniform(*cfg.level_db) / 20)
        heard, target = (self.chain.speech(clean, rng) if self.chain else (clean, clean))
        if self.chain:
            noise = self.chain.noise(noise, rng)
        speech_rms = _rms(heard) if _rms(heard) > 1e-5 else level
        heard, target = heard * (level / speech_rms), target * (level / speech_rms)
        noise = noise * (level / _rms(noise)) * 10 ** (-snr / 20)
        if self.chain:
            floor = self.chain.noise_floor(self.length, level if _rms(clean) > 1e-5 else 0.0, rng)
            if floor is not None:
                heard, target = heard + floor, target + floor
            noisy, target = self.chain.microphone([heard + noise, target], rng)
            noisy = self.chain.clip(noisy, rng)
        else:
            noisy = heard + noise
        clean = target
        peak = float(np.abs(noisy).max())
        if peak > 0.99:
            noisy, clean = noisy * (0.99 / peak), clean * (0.99 / peak)
        meta = {"speaker": first.group, "sex": first.label + ("" if pitch == 1.0 else "_lowered" if pitch < 1 else "_raised"),
                "noise": noise_group, "noise_type": noise_type, "snr_db": round(snr, 2)}
        return noisy.astype(np.float32), clean.astype(np.float32), meta


def build_pairs(mixer: Mixer, count: int, seed: int, snr_values: list[float] | None = None,
                desc: str = "mixing") -> tuple[list[Pair], list[dict]]:
    """``count`` lab-format pairs and their metadata (SNR cycled over ``snr_values`` if given)."""
    rng = np.random.default_rng(seed)
    pairs, metas = [], []
    for index in tqdm(range(count), desc=desc, unit="pair"):
        snr = snr_values[index % len(snr_values)] if snr_values else None
        noisy, clean, meta = mixer.mix(rng, snr)
        pairs.append((torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None]))
        metas.append(meta)
    return pairs, metas


def save_pairs(pairs: list[Pair], path: str | Path, metas: list[dict] | None = None) -> Path:
    """Write the lab format (and ``<name>.meta.json`` beside it when metadata exists)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, path)
    if metas is not None:
        path.with_suffix(".meta.json").write_text(json.dumps(metas))
    return path


def load_pairs(path: str | Path) -> tuple[list[Pair], list[dict] | None]:
    """Read a lab-format file (made here or elsewhere) safely; metadata if present."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        pairs = load_weights_only(path)
    except Exception:  # garbage, audio, a truncated file, or a pickle that would run code
        raise ValueError(f"{path}: not a lab-format file (not a torch.save file of tensors)") from None
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"{path}: expected a non-empty list of (noisy, clean) pairs")
    checked = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"{path}: item {index} is not a (noisy, clean) pair")
        noisy, clean = (torch.as_tensor(t, dtype=torch.float32).reshape(1, -1) for t in pair)
        if noisy.shape != clean.shape:
            raise ValueError(f"{path}: item {index} has noisy {tuple(noisy.shape)} vs clean {tuple(clean.shape)}")
        checked.append((noisy, clean))
    meta_path = path.with_suffix(".meta.json")
    metas = json.loads(meta_path.read_text()) if meta_path.exists() else None
    return checked, metas


def paired_folders(root: str | Path) -> dict[str, list[Pair]]:
    """VoiceBank+DEMAND style ``clean_X/`` + ``noisy_X/`` folders (same file names) -> pairs per X.

    Files are mixed down to mono and resampled to 16 kHz; a name present in only
    one of the two folders is skipped.
    """
    import soundfile as sf

    from rtdenoise.engine.resample import StreamResampler

    def load(path: Path) -> torch.Tensor:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)[None]
        resampler = StreamResampler(rate, SAMPLE_RATE, 1)
        return torch.from_numpy(np.concatenate([resampler.process(mono), resampler.flush()], axis=1))

    root = Path(root)
    result: dict[str, list[Pair]] = {}
    for clean_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("clean")):
        noisy_dir = root / ("noisy" + clean_dir.name[len("clean"):])
        if not noisy_dir.is_dir():
            continue
        names = sorted(p.name for p in clean_dir.iterdir() if (noisy_dir / p.name).is_file())
        pairs = []
        for name in tqdm(names, desc=f"read {clean_dir.name}", unit="file"):
            noisy, clean = load(noisy_dir / name), load(clean_dir / name)
            length = min(noisy.shape[-1], clean.shape[-1])
            pairs.append((noisy[:, :length], clean[:, :length]))
        if pairs:
            result[clean_dir.name[len("clean"):].strip("_") or "all"] = pairs
    if not result:
        raise ValueError(f"{root}: no clean_*/noisy_* folder pairs with matching file names")
    return result


def random_split(pairs: list[Pair], held_out: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """The lab's random split: ``held_out`` pairs for testing, the rest for training."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    test = set(order[:held_out])
    return [p for i, p in enumerate(pairs) if i not in test], [p for i, p in enumerate(pairs) if i in test]


class OnTheFlyDataset(torch.utils.data.IterableDataset):
    """Fresh mixtures (new noise, SNR, gain) forever; each worker has its own seed.

    ``resumed_at``: the epochs a resumed run has already done, so that it mixes new audio
    rather than replaying what its first epochs saw (0: a fresh run, the seeds as ever).
    """

    def __init__(self, mixer: Mixer, seed: int, rank: int = 0, resumed_at: int = 0) -> None:
        self.mixer = mixer
        self.seed = seed
        self.rank = rank  # distributed training: each rank mixes its own audio
        self.resumed_at = resumed_at

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        entropy = [self.seed, info.id if info else 0]
        if self.resumed_at:
            entropy += [self.rank, self.resumed_at]
        elif self.rank:
            entropy += [self.rank]
        rng = np.random.default_rng(entropy)
        while True:
            noisy, clean, _ = self.mixer.mix(rng)
            yield torch.from_numpy(noisy), torch.from_numpy(clean)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.dataset``: write lab-format train/validation/test files from a corpus."""
    import argparse

    parser = argparse.ArgumentParser(description="Mix a corpus into lab-format (noisy, clean) tensor files.")
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"),
                        help="corpus folder from python -m training.corpus (default data/corpus)")
    parser.add_argument("--out", type=Path, default=Path("data"), help="folder for the .pt files (default data)")
    parser.add_argument("--seconds", type=finite_float, default=4.0, help="length of each mixture (default 4)")
    parser.add_argument("--train", type=int, default=300, help="pairs in train.pt (the lab used 300)")
    parser.add_argument("--validation", type=int, default=120, help="pairs in validation.pt (default 120)")
    parser.add_argument("--test", type=int, default=240, help="pairs in test.pt, spread evenly over the SNR bands (default 240)")
    parser.add_argument("--ood", type=int, default=240,
                        help="pairs in ood.pt: voices, noises and packages training never touched (default 240)")
    parser.add_argument("--expressive", type=int, default=120,
                        help="pairs in expressive.pt: acted, shouted game voices (never trained on) over the "
                             "out-of-domain noises (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="mixing seed: same seed, same files")
    parser.add_argument("--paired", type=Path, help="convert VoiceBank+DEMAND style clean_*/noisy_* folders instead")
    parser.add_argument("--pack", type=Path, help="instead write the train and validation splits as one compact "
                        "int16 .npz (for a machine without ffmpeg or soundfile, e.g. a lent GPU); "
                        "train with --corpus PACK.npz")
    parser.add_argument("--pack-speech-minutes", type=finite_float, default=5.0, help="at most this much per voice")
    parser.add_argument("--pack-noise-minutes", type=finite_float, default=1.5, help="at most this much per noise source")
    parser.add_argument("--pack-splits", default="train,validation", help="splits to pack (comma-separated)")
    parser.add_argument("--pack-parts", type=int, default=1,
                        help="spread the pack over this many files of about equal size (a folder of them is a corpus)")
    parser.add_argument("--pack-mulaw-noise", action="store_true", help="store noise as 8-bit mu-law (half the size)")
    args = parser.parse_args(argv)
    for option, value in (("--seconds", args.seconds), ("--pack-speech-minutes", args.pack_speech_minutes),
                          ("--pack-noise-minutes", args.pack_noise_minutes)):
        require_positive(option, value)
    for option, value in (("--train", args.train), ("--validation", args.validation), ("--test", args.test),
                          ("--ood", args.ood)):
        require_at_least(option, value, 1)
    require_at_least("--expressive", args.expressive, 0)
    require_at_least("--pack-parts", args.pack_parts, 1)
    if args.pack:
        for path in save_pack(args.corpus, args.pack, splits=tuple(args.pack_splits.split(",")),
                              minutes_per_group=args.pack_speech_minutes,
                              noise_minutes_per_group=args.pack_noise_minutes, seed=args.seed,
                              parts=args.pack_parts, mulaw_noise=args.pack_mulaw_noise):
            print(f"pack: {path} ({path.stat().st_size / 2 ** 20:.1f} MB)")
        return 0
    if args.paired:
        for name, pairs in paired_folders(args.paired).items():
            print(f"{name}: {len(pairs)} pairs -> {save_pairs(pairs, args.out / f'paired_{name}.pt')}")
        return 0
    config = MixConfig(seconds=args.seconds)
    test_snrs = [-5.0, 0.0, 5.0, 10.0, 15.0]
    for split, count, synthetic, snrs in (("train", args.train, True, None),
                                          ("validation", args.validation, False, test_snrs),
                                          ("test", args.test, False, test_snrs),
                                          ("ood", args.ood, True, test_snrs),
                                          ("expressive", args.expressive, True, test_snrs)):
        if count <= 0:
            continue
        data = load_corpus_split(args.corpus, split)
        if split == "validation" and load_corpus_split(args.corpus, "valvoice").speech:
            data = load_corpus_split(args.corpus, "valvoice")  # voices and noises kept out of training
        if split == "expressive":
            data.noise = load_corpus_split(args.corpus, "ood").noise  # noises of the out-of-domain set
        if split in ("ood", "expressive") and not (data.speech and data.noise):
            print(f"{split}: the corpus has no such out-of-domain voices or noises; skipped")
            continue
        unseen = split in ("ood", "expressive")
        eval_config = config if split == "train" else MixConfig(
            seconds=args.seconds, pitch_shift_probability=0.0, babble_probability=0.0, silence_probability=0.0,
            balance_speakers=unseen, synthetic_probability=0.0,
            synthetic_only_probability=0.15 if unseen else 0.0, synthetic_kinds=("white", "pink"))
        seed = args.seed + {"train": 0, "validation": 1, "test": 2, "ood": 3, "expressive": 4}[split] * 1000
        pairs, metas = build_pairs(Mixer(data, eval_config, synthetic), count, seed, snrs, desc=f"mix {split}")
        print(f"{split}: {len(pairs)} pairs -> {save_pairs(pairs, args.out / f'{split}.pt', metas)}")
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.dataset"))
