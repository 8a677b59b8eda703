"""Export a model to an ONNX file that steps one chunk at a time with its state in the caller's hands.

The graph is the model's own ``step`` (traced by ``torch.onnx.export``), its FFTs computed as matrix
products (:meth:`StreamingModel.use_matrix_dft`: onnxruntime's DFT of 320 points is a slow direct
loop). Empty pieces of state (parts a model's spec turns off) stay inside the graph as constants.
What stays outside: resampling, the kept high band above 8 kHz at 32 kHz and up, the attenuation
limit, the voice gate and the output guard (the engine's, not the model's).
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from rtdenoise.models import CheckpointError, StreamingModel

from .metadata import AUDIO_INPUT, AUDIO_OUTPUT, OnnxInfo, StateEntry, state_input, state_output

OPSET = 18          # onnxruntime 1.14 and later, desktop and mobile builds
CHUNK_MS = 10       # a hop-1 model (the MIMO CNN) is exported stepping this much audio per call


class _OneChunk(nn.Module):
    """``(audio, *state) -> (enhanced, *next state)`` for one chunk of batch 1; empty states are constants."""

    def __init__(self, model: StreamingModel, kept: list[int]) -> None:
        super().__init__()
        self.model = model
        self.kept = kept
        self.empty = list(model.init_state(1))

    def forward(self, audio: Tensor, *kept_state: Tensor) -> tuple[Tensor, ...]:
        state = list(self.empty)
        for index, tensor in zip(self.kept, kept_state):
            state[index] = tensor
        enhanced, new_state = self.model.step(audio, tuple(state))
        return (enhanced, *(new_state[index] for index in self.kept))


def chunk_samples(model: StreamingModel) -> int:
    """Samples per call of the exported graph: the model's hop, or 10 ms for a hop-1 model."""
    return model.hop if model.hop > 1 else model.sample_rate * CHUNK_MS // 1000


def describe(model: StreamingModel, name: str) -> OnnxInfo:
    """The metadata of ``model``'s export: state names, shapes, first values, which of them are memory."""
    from rtdenoise.version import __version__

    state = model.init_state(1, "cpu")
    probe = tuple(torch.randn_like(tensor) for tensor in state)
    memory = model.memory_only(probe)
    entries = []
    for label, first, probed, remembered in zip(model.state_names(), state, probe, memory):
        if not first.numel():
            continue
        fill = float(first.flatten()[0])
        if not torch.all(first == fill):
            raise CheckpointError(f"{name}: its initial {label} is not one value; the export cannot describe it")
        entries.append(StateEntry(label, list(first.shape), fill, bool(torch.equal(probed, remembered))))
    frame = getattr(model, "frame", 0)
    window = f"sqrt-hann {frame}" if getattr(model, "window", None) is not None and frame > 1 else "none"
    exponent = getattr(model, "high_band_exponent", None)
    return OnnxInfo(model=name, arch=model.arch, sample_rate=model.sample_rate, hop=chunk_samples(model),
                    latency_samples=model.latency_samples, window=window, states=entries,
                    parameters=model.num_parameters(), spec=model.spec_dict(),
                    high_band_exponent=float(exponent) if exponent is not None else None,
                    rtdenoise_version=__version__)


def export_proto(model: StreamingModel, name: str):
    """The ONNX ``ModelProto`` of ``model`` stepping one chunk, with rtdenoise's metadata; checked."""
    import onnx

    info = describe(model, name)
    graph_model = copy.deepcopy(model).cpu().eval()
    graph_model.use_matrix_dft()
    state = graph_model.init_state(1, "cpu")
    kept = [index for index, tensor in enumerate(state) if tensor.numel()]
    names = [entry.name for entry in info.states]
    noise = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(1, info.hop, generator=noise)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # its notes on optional packages (torchvision)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_OneChunk(graph_model, kept), (audio, *(state[i] for i in kept)), dynamo=True,
                                    opset_version=OPSET, input_names=[AUDIO_INPUT, *map(state_input, names)],
                                    output_names=[AUDIO_OUTPUT, *map(state_output, names)], optimize=False,
                                    verbose=False)
    proto = _simplified(program.model_proto)
    proto.doc_string = (f"rtdenoise model {name!r} ({model.arch}): one chunk of {info.hop} samples at "
                        f"{info.sample_rate} Hz in, one out; state in, next state out (see metadata 'states')")
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _simplified(proto):
    """The graph after onnxruntime's basic, semantics-keeping rewrites (constant folding, redundant nodes
    removed), saved as plain ONNX operators. (onnxscript's optimizer is not used: it dropped the 1e-20
    that keeps a silent frame's pitch correlation finite, and the first frames came out NaN.)"""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="rtdenoise-export-") as folder:
        options.optimized_model_filepath = str(Path(folder) / "model.onnx")
        onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        simplified = onnx.load(options.optimized_model_filepath)
    used = {node.domain for node in simplified.graph.node}
    kept = [entry for entry in simplified.opset_import if entry.domain in used or entry.domain in ("", "ai.onnx")]
    del simplified.opset_import[:]
    simplified.opset_import.extend(kept)
    return simplified


def export_file(model: StreamingModel, name: str, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``model``'s export to ``out`` atomically (a half-written file never appears under its name)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (use --overwrite to replace it)")
    if out.exists() and not out.is_file():
        raise IsADirectoryError(f"{out} is not a file")
    data = export_proto(model, name).SerializeToString()
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # as any new file (mkstemp makes it private)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out
