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


def test_the_stream_bench_measures_muted_callers_too(capsys):
    assert main(["bench", "--model", "gru", "--streams", "4", "--streams", "8", "--muted", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["muted"] == 0.5 and [(t["streams"], t["muted"]) for t in report["trials"]] == [(4, 2), (8, 4)]
    for trial in report["trials"]:
        assert 0 < trial["median_ms"] <= trial["p99_ms"] <= trial["max_ms"] and trial["rows"] == trial["streams"]
    assert main(["bench", "--model", "gru", "--streams", "2", "--muted", "50"]) == 0
    assert "50 % of them muted" in capsys.readouterr().out


def test_live_command_plays_a_file_without_devices(tmp_path, noisy_path, small_model_path, capsys):
    record = tmp_path / "live.wav"
    assert main(["live", "--file", str(noisy_path), "--no-output", "--record", str(record),
                 "--model", small_model_path]) == 0
    assert "processed" in capsys.readouterr().out
    assert sf.info(str(record)).frames == sf.info(str(noisy_path)).frames


@pytest.mark.parametrize("option,value", [("--seconds", "0"), ("--repeats", "0"), ("--threads", "0"),
                                          ("--chunk-ms", "-1"), ("--paced-seconds", "-1"), ("--seconds", "nan"),
                                          ("--device", "tpu"), ("--muted", "150"), ("--muted", "20")])
def test_a_bad_bench_option_is_one_line(option, value, capsys):
    extra = ["--streams", "2"] if option == "--muted" and value == "150" else []
    assert main(["bench", "--model", "gru", option, value, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rtdenoise: error: ") and option.lstrip("-") in err, err
