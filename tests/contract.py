"""The streaming contract every model must keep (called by each model's tests)."""
from __future__ import annotations

import numpy as np
import torch

from rtdenoise.engine import StreamingDenoiser
from rtdenoise.models import StreamingModel

TOLERANCE = 1e-5


def random_splits(total: int, hop: int, rng: np.random.Generator) -> list[int]:
    """Chunk lengths (hop multiples) that add up to ``total``."""
    sizes, used = [], 0
    while used < total:
        size = min(total - used, int(rng.integers(1, 9)) * hop)
        sizes.append(size)
        used += size
    return sizes


def stream_through(model: StreamingModel, noisy: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    state = model.init_state(noisy.shape[0], noisy.device)
    outputs, start = [], 0
    for size in sizes:
        out, state = model.step(noisy[:, start:start + size], state)
        outputs.append(out)
        start += size
    return torch.cat(outputs, dim=-1)


@torch.no_grad()
def verify_contract(model: StreamingModel, seconds: float = 0.5, seed: int = 0) -> dict:
    """Assert forward == chunked step, batch == separate streams, causality, engine == forward.

    Returns the measured maximum |stream - offline| for the note.
    """
    model = model.eval()
    rng = np.random.default_rng(seed)
    length = int(seconds * model.sample_rate) // model.hop * model.hop
    noisy = torch.from_numpy(rng.standard_normal((3, length)).astype(np.float32) * 0.1)
    offline = model(noisy)
    assert offline.shape == noisy.shape
    worst = 0.0
    for trial in range(3):
        streamed = stream_through(model, noisy, random_splits(length, model.hop, rng))
        worst = max(worst, float((streamed - offline).abs().max()))
    assert worst < TOLERANCE, f"stream differs from offline by {worst}"
    # A batch of three is three independent streams.
    separate = torch.cat([model(noisy[i:i + 1]) for i in range(3)])
    assert torch.allclose(separate, offline, atol=TOLERANCE)
    # Causality: changing the input after t leaves outputs up to t unchanged.
    cut = (length // 2) // model.hop * model.hop
    changed = noisy.clone()
    changed[:, cut:] = torch.from_numpy(rng.standard_normal((3, length - cut)).astype(np.float32))
    assert torch.allclose(model(changed)[:, :cut], offline[:, :cut], atol=TOLERANCE)
    assert not torch.allclose(model(changed)[:, cut + model.latency_samples:], offline[:, cut + model.latency_samples:])
    # The engine, fed blocks of awkward sizes, reproduces forward exactly.
    for block in (1, 7, max(1, model.hop - 1), 331, length):
        engine = StreamingDenoiser(model, channels=3, output_guard=False)  # the arithmetic, not the limiter
        pieces = [engine.process(noisy[:, i:i + block].T.numpy()) for i in range(0, length, block)]
        pieces.append(engine.flush())
        produced = np.concatenate(pieces)[:length].T
        difference = float(np.abs(produced - offline.numpy()).max())
        worst = max(worst, difference)
        assert difference < TOLERANCE, f"engine with {block}-sample blocks differs by {difference}"
    return {"max_abs_stream_minus_offline": worst}
