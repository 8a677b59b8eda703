"""The multi-stream engine: streams stepped as one batch match each stream run alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtdenoise.engine import load_model
from rtdenoise.engine.silence import SilenceKeeper
from rtdenoise.engine import streams
from rtdenoise.engine.streams import MultiStreamEngine, state_batch_dims


def _alone(model, audio: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(audio)[None])[0].numpy()


def _streams(noisy_audio: np.ndarray, count: int, hop: int) -> list[np.ndarray]:
    """Different recorded excerpts, a whole number of hops each."""
    length = (len(noisy_audio) // 3) // hop * hop
    return [np.roll(noisy_audio, 2711 * i)[:length].astype(np.float32) * (0.5 + 0.1 * i) for i in range(count)]


@pytest.mark.parametrize("name", ["gru", "cnn-lab"])
def test_streams_joining_and_leaving_each_match_running_alone(name, noisy_audio):
    model, _ = load_model(name, "cpu")
    hop = model.hop
    audio = _streams(noisy_audio, 5, hop)
    hops = len(audio[0]) // hop
    engine = MultiStreamEngine(model)
    # streams 0-2 from the start; 3 joins at hop 10; 1 leaves at hop 20; 4 joins at hop 25
    joins = {0: [0, 1, 2], 10: [3], 25: [4]}
    leaves = {20: [1]}
    started, outputs = {}, {i: [] for i in range(5)}
    for t in range(hops):
        for i in joins.get(t, []):
            engine.join(i)
            started[i] = t
        for i in leaves.get(t, []):
            engine.leave(i)
        blocks = {i: audio[i][(t - started[i]) * hop:(t - started[i] + 1) * hop] for i in engine.streams}
        for i, out in engine.step(blocks).items():
            outputs[i].append(out)
    for i in range(5):
        got = np.concatenate(outputs[i])
        expected = _alone(model, audio[i][: len(got)])
        assert len(got) > 5 * hop
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)


class _Alone:
    """One stream through the single-stream engine's rules for digital silence (SilenceKeeper), hop by hop."""

    def __init__(self, model) -> None:
        self.model, self.state = model, model.init_state(1, "cpu")
        self.keeper = SilenceKeeper(model.hop, model.latency_samples, model.sample_rate)

    def step_model(self, chunk: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, self.state = self.model.step(torch.from_numpy(chunk), self.state)
        return out.numpy()

    def __call__(self, hop: np.ndarray) -> np.ndarray:
        return self.keeper.run(hop[None], self)[0]


class _EveryRowStep:
    """What the CUDA graph does, on the CPU: every row of a fixed-shape batch stepped, the state written back
    into the same tensors (so the engine's handling of rows it must not advance is checked without a GPU)."""

    def __init__(self, model, state, channels: int, samples: int) -> None:
        self.model, self.shape = model, (channels, samples)
        self.state = tuple(part.clone() for part in state)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, new = self.model.step(torch.from_numpy(chunk), self.state)
            for static, part in zip(self.state, new):
                static.copy_(part)
        return out.numpy()


@pytest.mark.parametrize("every_row", [False, True], ids=["cpu-rows", "graph-like"])
def test_a_muted_stream_in_the_batch_keeps_its_statistics_as_one_alone_does(noisy_audio, monkeypatch, every_row):
    model, _ = load_model("bands", "cpu")
    hop = model.hop
    speech = _streams(noisy_audio, 3, hop)
    muted = np.concatenate([speech[0][:40 * hop], np.zeros(60 * hop, np.float32), speech[0][40 * hop:100 * hop]])
    late = np.concatenate([np.zeros(20 * hop, np.float32), speech[1][:140 * hop]])  # a caller who starts muted
    talking = speech[2][:160 * hop].copy()
    talking[60 * hop:63 * hop] = 0.0  # a 30 ms dropout: the statistics go on from before it
    audio = {"muted": muted, "late": late, "talking": talking}
    if every_row:
        monkeypatch.setattr(streams, "GraphedStep", _EveryRowStep)
    engine, alone = MultiStreamEngine(model, graphs=every_row), {name: _Alone(model) for name in audio}
    for name in ("muted", "late", "talking"):
        engine.join(name)
    outputs, expected = {name: [] for name in audio}, {name: [] for name in audio}
    for t in range(160):
        if t == 120:
            engine.leave("talking")  # the rows after it move: the quiet streams' rules go with them
        blocks = {name: audio[name][t * hop:(t + 1) * hop] for name in engine.streams}
        for name, out in engine.step(blocks).items():
            outputs[name].append(out)
            expected[name].append(alone[name](blocks[name]))
    for name in audio:
        np.testing.assert_allclose(np.concatenate(outputs[name]), np.concatenate(expected[name]), atol=2e-5, rtol=0)
    assert not np.concatenate(outputs["late"][:20]).any()  # nothing out before the first sound
    assert not np.concatenate(outputs["muted"][60:100]).any()  # nor once a mute has lasted 0.1 s
    # the same stream with its silence fed to the model (as before): its statistics dragged down after the mute
    with torch.inference_mode():
        fed = model(torch.from_numpy(muted)[None])[0].numpy()[100 * hop:]
    after = np.concatenate(outputs["muted"][100:])
    assert np.sqrt(np.mean((fed - after) ** 2)) > 0.05 * np.sqrt(np.mean(after ** 2))  # measured: 0.12


def test_engine_refuses_a_duplicate_stream_and_a_missing_hop():
    model, _ = load_model("gru", "cpu")
    engine = MultiStreamEngine(model)
    engine.join("a")
    engine.join("b")
    with pytest.raises(ValueError, match="already joined"):
        engine.join("a")
    with pytest.raises(KeyError, match="no audio"):
        engine.step({"a": np.zeros(model.hop, np.float32)})


def test_the_batch_dimension_of_each_state_is_found():
    model, _ = load_model("gru", "cpu")
    assert state_batch_dims(model) == (0, 0, 1)  # overlap buffers, then the GRU's (layers, batch, hidden)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_buckets_match_the_cpu_streams(noisy_audio):
    model, _ = load_model("gru", "cpu")
    audio = _streams(noisy_audio, 3, model.hop)
    audio[1][10 * model.hop:25 * model.hop] = 0.0  # muted for 150 ms: its graph row is put back while it waits
    cpu, gpu = MultiStreamEngine(model), MultiStreamEngine(load_model("gru", "cuda")[0], "cuda")
    outs = {"cpu": [], "gpu": []}
    for engine, key in ((cpu, "cpu"), (gpu, "gpu")):
        for i in range(3):  # three streams: buckets 1, 2 then 4
            engine.join(i)
        for t in range(40):
            outs[key].append(engine.step({i: audio[i][t * model.hop:(t + 1) * model.hop] for i in range(3)}))
    assert gpu.capacity == 4
    for a, b in zip(outs["cpu"], outs["gpu"]):
        for i in range(3):
            np.testing.assert_allclose(a[i], b[i], atol=1e-4)
