"""``rtdenoise bench --json`` reports every figure (measured, so only their presence and sense are checked)."""
from __future__ import annotations

import json

import pytest

import soundfile as sf

from rtdenoise.cli import main


def test_bench_json_has_the_figures(capsys):
    assert main(["bench", "--model", "cnn-lab", "--seconds", "1", "--repeats", "2", "--paced-seconds", "0.5",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["machine"]["torch_threads"] == 1 and report["machine"]["cpu"]
    entry = report["models"]["cnn-lab"]
    assert entry["parameters"] == 400 and entry["algorithmic_latency_ms"] == 10.0
    stream = entry["streaming"]
    assert 0 < stream["rtf"] and 0 < stream["chunk_median_ms"] <= stream["chunk_p99_ms"] <= stream["chunk_max_ms"]
    assert entry["offline"]["rtf"] > 0 and entry["peak_rss_mb"] > 0 and len(entry["runs_rtf"]) == 2
    assert 0 < stream["cpu_rtf"] and len(entry["runs_cpu_rtf"]) == 2
    paced = entry["paced"]
    assert paced["chunks"] == 50 and 0 <= paced["late_chunks"] <= paced["chunks"]
    assert 0 < paced["rtf"] and 0 < paced["chunk_median_ms"] <= paced["chunk_p99_ms"] <= paced["chunk_max_ms"]


def test_bench_table_shows_the_paced_line(capsys):
    assert main(["bench", "--model", "cnn-lab", "--seconds", "1", "--repeats", "1", "--paced-seconds", "0.3"]) == 0
    table = capsys.readouterr().out
    assert "cnn-lab" in table and "  paced" in table and "late" in table


def test_live_command_plays_a_file_without_devices(tmp_path, noisy_path, small_model_path, capsys):
    record = tmp_path / "live.wav"
    assert main(["live", "--file", str(noisy_path), "--no-output", "--record", str(record),
                 "--model", small_model_path]) == 0
    assert "processed" in capsys.readouterr().out
    assert sf.info(str(record)).frames == sf.info(str(noisy_path)).frames


@pytest.mark.parametrize("option,value", [("--seconds", "0"), ("--repeats", "0"), ("--threads", "0"),
                                          ("--chunk-ms", "-1"), ("--paced-seconds", "-1"), ("--seconds", "nan"),
                                          ("--device", "tpu")])
def test_a_bad_bench_option_is_one_line(option, value, capsys):
    assert main(["bench", "--model", "gru", option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rtdenoise: error: ") and option.lstrip("-") in err, err
