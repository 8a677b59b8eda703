"""The multi-stream engine: streams stepped as one batch match each stream run alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtdenoise.engine import load_model
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
