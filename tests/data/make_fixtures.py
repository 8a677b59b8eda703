"""Rebuild the committed fixtures from a corpus made by ``python -m training.corpus``.

    python tests/data/make_fixtures.py data/corpus
"""
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "data/corpus")
here = Path(__file__).parent
speech = [sf.read(corpus / "speech/en_allison" / name, dtype="float32")[0]
          for name in ("vm-intro.wav", "conf-getpin.wav")]
clean = np.concatenate([np.zeros(1600, np.float32), speech[0], np.zeros(2400, np.float32), speech[1]])[: 16000 * 5]
noise = sf.read(corpus / "noise/wesnoth_birds/birds2.wav", dtype="float32")[0]
noise = np.tile(noise, len(clean) // len(noise) + 1)[: len(clean)]
noise = noise / np.sqrt(np.mean(noise ** 2)) * np.sqrt(np.mean(clean ** 2)) * 10 ** (-5 / 20)  # 5 dB SNR
clean, noise = clean * 0.3 / np.abs(clean + noise).max(), noise * 0.3 / np.abs(clean + noise).max()
sf.write(here / "speech_clean.wav", clean, 16000, subtype="PCM_16")
sf.write(here / "noise_birds.wav", noise, 16000, subtype="PCM_16")
sf.write(here / "speech_noisy.wav", clean + noise, 16000, subtype="PCM_16")
sf.write(here.parent.parent / "rtdenoise/samples/noisy_speech.wav", clean + noise, 16000, subtype="PCM_16")
print(len(clean) / 16000, "s")
