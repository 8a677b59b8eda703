"""The ONNX export: explicit state, parity with the engine's offline output for every shipped model,
the onnxruntime backend in denoise / live / bench / the app, the numpy-only README example, bad files."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rtdenoise.cli import main  # noqa: E402
from rtdenoise.engine import StreamingDenoiser, load_model  # noqa: E402
from rtdenoise.models import list_pretrained  # noqa: E402
from rtdenoise.portable import OnnxModel  # noqa: E402
from rtdenoise.portable.export import export_file  # noqa: E402
from rtdenoise.portable.parity import stepped  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every shipped model exported once: {name: path}."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name in list_pretrained():
        model, checkpoint = load_model(name, "cpu")
        files[name] = export_file(model, checkpoint.get("name", name), folder / f"{name}.onnx")
    return files


def offline_output(model, audio: np.ndarray) -> np.ndarray:
    """The engine's offline path (latency compensated, the default kernels and guards), as `denoise` runs it."""
    engine = StreamingDenoiser(model, 1, model.sample_rate, compensate_latency=True, coalesce=True)
    blocks = [engine.process(audio[i:i + 16000, None]) for i in range(0, len(audio), 16000)]
    return np.concatenate(blocks + [engine.flush()])[:, 0]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_pretrained())
def test_onnxruntime_stepped_hop_by_hop_equals_the_engines_offline_output(exported, name, noisy_audio):
    model, _ = load_model(name, "cpu")
    onnx_model = OnnxModel(exported[name], name)
    audio = noisy_audio[: 3 * 16000]   # from the stream's first frame: the running normalisation's start
    reference = offline_output(model, audio)
    stepped_out = stepped(onnx_model, np.concatenate([audio, np.zeros(onnx_model.latency_samples + onnx_model.hop,
                                                                        np.float32)]), onnx_model.hop)
    candidate = stepped_out[onnx_model.latency_samples: onnx_model.latency_samples + len(audio)]
    error = np.abs(candidate - reference).max() / np.abs(reference).max()
    assert error < 1e-4, error
    assert np.abs(reference).max() > 0.05  # a real output, not two silences


def test_the_file_names_its_state_and_says_how_to_start_it(exported):
    import onnx

    proto = onnx.load(str(exported["bands"]))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    states = json.loads(meta["states"])
    names = [s["name"] for s in states]
    assert names == ["input_history", "overlap_tail", "gru_hidden", "band_statistics", "pitch_history"]
    assert [i.name for i in proto.graph.input] == ["audio"] + [f"state_{n}" for n in names]
    assert [o.name for o in proto.graph.output] == ["enhanced"] + [f"next_{n}" for n in names]
    assert {s["name"]: s["fill"] for s in states}["band_statistics"] == -100.0  # unset: the first frame starts it
    assert {s["name"] for s in states if s["memory"]} == {"gru_hidden", "band_statistics"}
    assert (meta["sample_rate"], meta["hop"], meta["latency_samples"], meta["window"]) == ("16000", "160", "160",
                                                                                            "sqrt-hann 320")
    assert meta["model"] == "bands" and meta["format"] == "rtdenoise-onnx" and meta["format_version"] == "1"
    assert proto.opset_import[0].version >= 17
    assert not any(node.op_type == "DFT" for node in proto.graph.node)  # the FFTs are matrix products


def test_the_export_command_writes_a_checked_file_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "cnn.onnx"
    assert main(["export", "cnn-lab", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "follows the model within" in printed and out.stat().st_size > 1000
    assert oct(out.stat().st_mode & 0o777) != "0o600"  # an ordinary file, not a private temporary
    before = out.read_bytes()
    assert main(["export", "cnn-lab", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", "cnn-lab", "-o", str(tmp_path / "cnn.pt")]) == 2
    assert ".onnx" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx"]  # no temporary left behind


def test_denoise_with_the_onnx_backend_matches_the_torch_backend(tmp_path, exported, noisy_path, capsys):
    by_torch, by_file, by_name = tmp_path / "t.wav", tmp_path / "f.wav", tmp_path / "n.wav"
    assert main(["denoise", str(noisy_path), "-o", str(by_torch), "--model", "bands", "--quiet"]) == 0
    assert main(["denoise", str(noisy_path), "-o", str(by_file), "--model", str(exported["bands"]), "--quiet"]) == 0
    assert main(["denoise", str(noisy_path), "-o", str(by_name), "--model", "bands", "--backend", "onnx",
                 "--quiet"]) == 0
    reference = sf.read(str(by_torch), dtype="float32")[0]
    for path in (by_file, by_name):
        audio = sf.read(str(path), dtype="float32")[0]
        assert audio.shape == reference.shape
        assert np.abs(audio - reference).max() <= 2 / 32768   # the input's 16-bit PCM: within rounding to it


def test_live_and_bench_run_the_onnx_backend(tmp_path, exported, noisy_path, capsys):
    record = tmp_path / "live.wav"
    assert main(["live", "--file", str(noisy_path), "--no-output", "--record", str(record), "--model",
                 str(exported["bands"])]) == 0
    assert sf.info(str(record)).frames == sf.info(str(noisy_path)).frames
    capsys.readouterr()
    assert main(["bench", "--model", "cnn-lab", "--backend", "kernel", "--backend", "onnx", "--seconds", "1",
                 "--repeats", "1", "--paced-seconds", "0"]) == 0
    table = capsys.readouterr().out
    assert "cnn-lab [kernel]" in table and "cnn-lab [onnx]" in table and "onnxruntime 1." in table


def test_the_onnx_backend_refuses_a_gpu_and_parallel_workers_in_one_line(noisy_path, tmp_path, capsys):
    assert main(["denoise", str(noisy_path), "-o", str(tmp_path / "o.wav"), "--backend", "onnx",
                 "--device", "cuda"]) == 2
    assert "CPU" in capsys.readouterr().err
    assert main(["denoise", str(noisy_path), "-o", str(tmp_path / "o.wav"), "--backend", "onnx", "--jobs", "2"]) == 2
    assert "rtdenoise export" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _broken_files(source: Path, folder: Path) -> dict[str, Path]:
    import onnx

    data = source.read_bytes()
    truncated = folder / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    newer = onnx.load(str(source))
    next(p for p in newer.metadata_props if p.key == "format_version").value = "2"
    missing = onnx.load(str(source))   # a state frozen into a constant (the bug of DeepFilterNet's export, #655)
    dropped = missing.graph.input[2]
    shape = [d.dim_value for d in dropped.type.tensor_type.shape.dim]
    missing.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros(shape, np.float32), dropped.name))
    missing.graph.input.remove(dropped)
    foreign = onnx.load(str(source))
    del foreign.metadata_props[:]
    files = {"truncated": truncated}
    for label, proto in (("newer", newer), ("missing", missing), ("foreign", foreign)):
        files[label] = folder / f"{label}.onnx"
        files[label].write_bytes(proto.SerializeToString())
    return files


@pytest.mark.parametrize("kind,words", [("truncated", "not a readable ONNX model"), ("newer", "format"),
                                        ("missing", "lacks the input 'state_layer2_history'"), ("foreign", "without rtdenoise's metadata")])
def test_a_bad_exported_file_is_one_line_and_writes_nothing(tmp_path, exported, noisy_path, capsys, kind, words):
    bad = _broken_files(exported["cnn-lab"], tmp_path)[kind]
    out = tmp_path / "out.wav"
    assert main(["denoise", str(noisy_path), "-o", str(out), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert not out.exists()
    assert main(["live", "--file", str(noisy_path), "--no-output", "--model", str(bad), "--backend", "onnx"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_readme_example_cleans_a_file_with_numpy_soundfile_and_onnxruntime_only(tmp_path, exported, noisy_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Without torch or rtdenoise"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "import torch" not in example and "rtdenoise" not in example.replace("rtdenoise/samples", "")
    (tmp_path / "rtdenoise" / "samples").mkdir(parents=True)
    (tmp_path / "rtdenoise" / "samples" / "noisy_speech.wav").write_bytes(noisy_path.read_bytes())
    (tmp_path / "bands.onnx").write_bytes(exported["bands"].read_bytes())
    # torch and rtdenoise cannot be imported at all in the example's process
    guard = "import sys\nsys.modules['torch'] = None\nsys.modules['rtdenoise'] = None\n"
    (tmp_path / "clean.py").write_text(guard + example)
    result = subprocess.run([sys.executable, "clean.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr
    cleaned = sf.read(str(tmp_path / "cleaned-onnx.wav"), dtype="float32")[0]
    model, _ = load_model("bands", "cpu")
    reference = offline_output(model, sf.read(str(noisy_path), dtype="float32")[0])
    assert cleaned.shape == reference.shape
    assert np.abs(cleaned - reference).max() / np.abs(reference).max() < 1e-4


def test_every_preset_names_each_piece_of_its_state():
    from rtdenoise.models.registry import PRESETS, build_preset

    for preset in PRESETS:
        model = build_preset(preset)
        names = model.state_names()
        assert len(names) == len(model.init_state(1)) and len(set(names)) == len(names), preset
