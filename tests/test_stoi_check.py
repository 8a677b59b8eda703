"""The STOI rule printed by training.evaluate: every group where a system's STOI is not above the noisy input's."""
from __future__ import annotations

from training.scoring.stoi_check import stoi_shortfalls


def _table(overall: float, snr: dict[str, float], noise: dict[str, float]) -> dict:
    return {"overall": {"stoi": overall}, "snr": {g: {"stoi": v} for g, v in snr.items()},
            "noise": {g: {"stoi": v} for g, v in noise.items()}}


def test_a_group_at_or_below_the_noisy_input_is_named_with_its_row_and_the_rest_is_not():
    noisy = _table(0.80, {"+0 dB": 0.70, "+15 dB": 0.95}, {"wind": 0.72, "music": 0.86})
    fresh = {"noisy input": noisy, "ours": _table(0.85, {"+0 dB": 0.76, "+15 dB": 0.96}, {"wind": 0.75, "music": 0.9})}
    streams = {"noisy input (stream)": noisy,
               "ours (stream)": _table(0.84, {"+0 dB": 0.75, "+15 dB": 0.95}, {"wind": 0.74, "music": 0.89}),
               "noisy input (new speaker)": _table(0.80, {}, {"wind": 0.7277}),
               "ours (new speaker)": _table(0.83, {}, {"wind": 0.7230}),
               "noisy input (level step)": _table(0.80, {}, {}),
               "ours (level step)": _table(0.79, {}, {})}
    found = stoi_shortfalls(fresh, streams)
    assert list(found) == ["ours"]   # the noisy input is the yardstick, not a system
    assert found["ours"] == ["stream, SNR band +15 dB: STOI 0.9500 <= 0.9500", "level step, overall: STOI 0.7900 <= 0.8000"]
    # the groups inside a hard stream are a note, not the rule
    assert stoi_shortfalls(fresh, streams, hard_groups=True) == {"ours": ["new speaker, noise type wind: STOI 0.7230 <= 0.7277"]}
    assert stoi_shortfalls(fresh, {}) == {"ours": []}
