"""Festival's diphone voices: LPC-coded diphones read back into the recorded speech they came from."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from scipy.linalg import solve_toeplitz

from training.recordings.festival_diphones import Diphone, chains, diphones, resynthesise, write_utterances

RATE = 16000
HOP = 160  # one LPC frame per 10 ms (Festival's are pitch-synchronous; the reader does not care)
ORDER = 16


def lpc_frames(speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame end times and predictor coefficients ``a_k`` (``s[n] ~ sum a_k s[n-k]``) of each 10 ms."""
    times, coefficients = [], []
    for end in range(HOP, len(speech) + 1, HOP):
        window = speech[max(0, end - 2 * HOP): end + HOP].astype(np.float64)
        window = window * np.hanning(len(window))
        r = np.correlate(window, window, "full")[len(window) - 1: len(window) + ORDER]
        r[0] = r[0] * 1.001 + 1e-9  # a little white noise: a stable filter even in silence
        coefficients.append(solve_toeplitz(r[:ORDER], r[1:ORDER + 1]))
        times.append(end / RATE)
    return np.array(times), np.array(coefficients)


def inverse_filter(speech: np.ndarray, times: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The residual ``e[n] = s[n] - sum a_k s[n-k]``, with the coefficients of the frame ``n`` falls in."""
    frame_of = np.minimum(np.searchsorted(times, (np.arange(len(speech)) + 0.5) / RATE), len(times) - 1)
    padded = np.concatenate([np.zeros(ORDER), speech.astype(np.float64)])
    past = np.stack([padded[ORDER - k: len(padded) - k] for k in range(1, ORDER + 1)], axis=1)
    return speech - np.sum(coefficients[frame_of] * past, axis=1)


def est_track(times: np.ndarray, coefficients: np.ndarray, byte_order: str) -> bytes:
    """An EST binary LPC track as Festival writes one: time, break flag, ``lpc_0`` (power), coefficients."""
    names = ["lpc_0"] + [f"lpc_{k}" for k in range(1, ORDER)] + ["lpc_N"]
    header = ("EST_File Track\nDataType binary\nByteOrder " + ("01" if byte_order == "<" else "10")
              + f"\nNumFrames {len(times)}\nNumChannels {ORDER + 1}\nEqualSpace 0\nBreaksPresent true\n"
              + "CommentChar ;\n\n" + "".join(f"Channel_{i} {name}\n" for i, name in enumerate(names))
              + "EST_Header_End\n")
    frames = np.column_stack([times, np.ones(len(times)), np.full(len(times), 1000.0), coefficients])
    return header.encode() + frames.astype(byte_order + "f4").tobytes()


def mu_law_snd(residual: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(residual, -1, 1), RATE, format="AU", subtype="ULAW")
    return buffer.getvalue()


def diphone_group(pieces: dict[str, np.ndarray], byte_order: str = ">") -> bytes:
    """A grouped diphone index and its tracks and residuals, laid out as Festival's ``.group`` files are."""
    index, body = [], b""
    for name, speech in pieces.items():
        times, coefficients = lpc_frames(speech)
        track = est_track(times, coefficients, byte_order)
        index.append(f"{name} {len(body)} {len(body) + len(track)} 3")
        body += track + mu_law_snd(inverse_filter(speech, times, coefficients))
    header = (f"EST_File index\nDataType ascii\nNumEntries {len(pieces)}\nIndexName test\nDataFormat grouped\n"
              "Version 2\ntrack_file_format est_binary\nsig_file_format snd\nEST_Header_End\n")
    return (header + "".join(line + "\n" for line in index)).encode() + body


def test_resynthesis_undoes_the_inverse_filter_exactly(clean_audio):
    """Frame by frame, with the coefficients changing every 10 ms: the recursion gives the speech back."""
    speech = clean_audio[16000:32000].astype(np.float64)
    times, coefficients = lpc_frames(speech)
    residual = inverse_filter(speech, times, coefficients)
    assert np.sqrt(np.mean(residual ** 2)) < 0.5 * np.sqrt(np.mean(speech ** 2))  # prediction did something
    assert np.abs(resynthesise(times, coefficients, residual, RATE) - speech).max() < 1e-9


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_a_diphone_group_reads_back_as_the_speech_it_was_cut_from(tmp_path, clean_audio, byte_order):
    pieces = {"a-e": clean_audio[16000:18400], "e-t": clean_audio[18400:20000], "t-#": clean_audio[20000:22720]}
    group = tmp_path / "voice.group"
    group.write_bytes(diphone_group(pieces, byte_order))
    read = list(diphones(group))
    assert [d.name for d in read] == list(pieces) and {d.rate for d in read} == {RATE}
    for diphone, speech in zip(read, pieces.values()):
        assert len(diphone.audio) == len(speech)
        error = diphone.audio - speech
        snr = 10 * np.log10(np.sum(speech.astype(np.float64) ** 2) / np.sum(error.astype(np.float64) ** 2))
        assert snr > 20, (diphone.name, snr)  # only the residual's 8-bit mu-law stands between them


def test_diphones_join_into_utterances_of_a_few_seconds(tmp_path, clean_audio):
    cut = [clean_audio[start:start + 2400] for start in range(0, 16000 * 4, 2400)][:26]
    group = tmp_path / "voice.group"
    group.write_bytes(diphone_group({f"d-{i}": piece for i, piece in enumerate(cut)}))
    written = write_utterances(group, tmp_path / "out", seconds=1.5, fade_ms=5.0)
    lengths = [sf.info(str(path)).frames for path in written]
    fade = 80
    assert [path.name for path in written] == [f"{i:04d}.wav" for i in range(len(written))]
    # 2400-sample diphones: ten make 1.5 s, less a 5 ms cross-fade at each of the nine joins
    assert lengths[:2] == [10 * 2400 - 9 * fade] * 2 and lengths[-1] == 6 * 2400 - 5 * fade
    for path in written:
        audio = sf.read(str(path), dtype="float32")[0]
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 0.9 + 1e-6


def test_diphones_are_chained_with_each_join_inside_one_phone():
    """As a diphone synthesiser joins them: ``t-a`` goes on with ``a-...``; every diphone is used once."""
    names = ["#-t", "t-a", "a-t", "a-k", "k-a", "t-#", "k-#", "o-o", "s-o"]
    units = [Diphone(name, np.zeros(10, np.float32), RATE) for name in names]
    for seed in range(5):
        made = chains(units, np.random.default_rng(seed))
        assert sorted(unit.name for chain in made for unit in chain) == sorted(names)
        for chain in made:
            for before, after in zip(chain, chain[1:]):
                assert before.name.split("-")[1] == after.name.split("-")[0], [unit.name for unit in chain]
        assert max(len(chain) for chain in made) >= 3  # #-t t-a a-... : chains do form


def test_a_file_that_is_not_a_diphone_group_is_refused(tmp_path):
    wav = tmp_path / "voice.group"
    sf.write(str(wav), np.zeros(1600), RATE, format="WAV")
    with pytest.raises(ValueError, match="not an EST diphone group"):
        list(diphones(wav))
