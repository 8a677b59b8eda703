"""Where the corpus comes from: catalogues split into recordings, noise families drawn evenly, splits kept apart."""
from __future__ import annotations

import io
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.recordings.catalogues import split_openttd_catalogue
from training.dataset import Clip, CorpusSplit, MixConfig, Mixer
from training.recordings.sources import NOISE_SETS, SPEECH_SETS

from .conftest import DATA

DATA_NOTES = Path(__file__).resolve().parents[2] / "shared" / "DATA.md"  # the workplace's data notes, if present


def reserved_packages() -> set[str]:
    """The packages DATA.md reserves for independent evaluation (read from it, so no file here names them)."""
    if not DATA_NOTES.is_file():
        pytest.skip("the data notes (DATA.md) that list the reserved packages are not on this machine")
    text = DATA_NOTES.read_text()
    section = text[text.index("## Reserved for independent evaluation"):]
    section = section[: section.index("\n\n", section.index("\n") + 1)]
    return set(re.findall(r"`([a-z0-9][a-z0-9.+-]+)`", section))


def _wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, 44100, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_an_openttd_catalogue_splits_into_its_recordings(tmp_path, clean_audio):
    """Two recorded entries and an empty placeholder, laid out as OpenSFX's catalogue is."""
    entries = [b"\x05Wind\x00" + _wav_bytes(clean_audio[:4000]), b"\x05None\x00",
               b"\x06Horse\x00" + _wav_bytes(clean_audio[4000:9000])]
    table_size = 8 * len(entries)
    table, body, offset = b"", b"", table_size
    for entry in entries:
        table += struct.pack("<II", offset | 0x80000000, len(entry))
        body += entry
        offset += len(entry)
    catalogue = tmp_path / "sounds.cat"
    catalogue.write_bytes(table + body)
    written = split_openttd_catalogue(catalogue, tmp_path / "split")
    assert [p.name for p in written] == ["00.wav", "02.wav"]
    first, rate = sf.read(str(written[0]), dtype="float32")
    assert rate == 44100 and np.abs(first - clean_audio[:4000]).max() < 1e-4
    assert len(sf.read(str(written[1]))[0]) == 5000


def test_a_file_that_is_no_catalogue_is_refused(tmp_path):
    not_a_catalogue = tmp_path / "birds.cat"
    not_a_catalogue.write_bytes((DATA / "noise_birds.wav").read_bytes())
    with pytest.raises(ValueError, match="not an OpenTTD sound catalogue"):
        split_openttd_catalogue(not_a_catalogue, tmp_path / "split")


def test_family_balanced_mixing_draws_a_thin_family_as_often_as_a_big_one():
    noise = sf.read(str(DATA / "noise_birds.wav"), dtype="float32")[0]
    speech = sf.read(str(DATA / "speech_clean.wav"), dtype="float32")[0]
    split = CorpusSplit(speech=[Clip(speech, "spk", "female")],
                        noise=[Clip(noise, f"music_{i}", "music") for i in range(9)] + [Clip(noise, "wind", "wind")])
    shares = {}
    for balance in (False, True):
        mixer = Mixer(split, MixConfig(seconds=0.5, synthetic_probability=0, synthetic_only_probability=0,
                                       balance_noise_families=balance))
        rng = np.random.default_rng(0)
        families = Counter(mixer.noise(rng)[2] for _ in range(2000))
        shares[balance] = families["wind"] / 2000
    assert shares[False] == pytest.approx(0.1, abs=0.03) and shares[True] == pytest.approx(0.5, abs=0.04)


def test_no_reserved_package_is_used_and_out_of_domain_packages_serve_nothing_else():
    splits_by_package: dict[str, set[str]] = {}
    for voices in SPEECH_SETS:
        splits_by_package.setdefault(voices.package, set()).update(voices.speakers.values())
    for noise in NOISE_SETS.values():
        splits_by_package.setdefault(noise.package, set()).add(noise.split)
    reserved = reserved_packages()
    assert len(reserved) >= 5 and not reserved & set(splits_by_package)
    mixed = {package: splits for package, splits in splits_by_package.items() if "ood" in splits and splits != {"ood"}}
    assert not mixed, mixed
    assert {"train", "valvoice"} <= splits_by_package["openttd-opensfx"]


def test_every_noise_family_has_several_training_sources():
    """Family balancing draws each family an eighth of the time: a family of one or two recordings
    would be learnt by heart. Counted as entries here (a per-file entry, e.g. LMMS's drums, is many)."""
    per_family = Counter(noise.family for noise in NOISE_SETS.values() if noise.split == "train")
    assert set(per_family) >= {"crowd", "wind_rain_water", "nature", "machines", "traffic_engines", "household",
                               "music", "percussion"}
    assert min(per_family.values()) >= 2, per_family
    assert min(per_family[family] for family in ("crowd", "wind_rain_water", "nature")) >= 5, per_family
    assert sum(per_family.values()) >= 40
