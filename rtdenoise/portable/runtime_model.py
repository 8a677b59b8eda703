"""An exported ONNX file stepped by onnxruntime, behind the streaming contract the engine expects.

``OnnxModel`` is a :class:`StreamingModel` without torch weights: ``step`` runs the file once per
chunk and channel (the file holds batch 1), the state a tuple of ``(channels, *shape)`` tensors in the
file's order. The engine wraps it like any model (resampling, high band, attenuation limit, gate,
output guard), so ``--backend onnx`` changes only who computes the network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rtdenoise.errors import first_line
from rtdenoise.models import CheckpointError, State, StreamingModel, load_checkpoint, resolve_model_path

from .metadata import AUDIO_INPUT, AUDIO_OUTPUT, OnnxInfo, state_input, state_output


class OnnxModel(StreamingModel):
    """One exported file in an onnxruntime session (one CPU thread: one stream's work is serial)."""

    arch = "onnx"

    def __init__(self, source: bytes | str | Path, label: str, threads: int = 1) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise RuntimeError("the onnx backend needs onnxruntime: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: a refused file is said in one line below
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"{label}: no such file")
            source = path.read_bytes()
        try:
            self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own classes for truncated or foreign files
            raise CheckpointError(f"{label}: not a readable ONNX model (truncated or damaged? {first_line(error)})") \
                from None
        self.info = info = OnnxInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, label)
        self._check_signature(label)
        self.name = info.model
        self.sample_rate = info.sample_rate
        self.hop = info.hop
        self.latency_samples = info.latency_samples
        if info.high_band_exponent is not None:
            self.high_band_exponent = info.high_band_exponent
        self._inputs = [AUDIO_INPUT] + [state_input(state.name) for state in info.states]
        self._outputs = [AUDIO_OUTPUT] + [state_output(state.name) for state in info.states]

    def _check_signature(self, label: str) -> None:
        """Every input and output the metadata names is in the graph, with its shape."""
        found = {arg.name: arg.shape for arg in self.session.get_inputs()}
        made = {arg.name: arg.shape for arg in self.session.get_outputs()}
        wanted = {AUDIO_INPUT: [1, self.info.hop]} | {state_input(s.name): s.shape for s in self.info.states}
        for name, shape in wanted.items():
            if name not in found:
                raise CheckpointError(f"{label}: the graph lacks the input {name!r} its metadata names")
            if list(found[name]) != list(shape):
                raise CheckpointError(f"{label}: input {name!r} is {found[name]}, its metadata says {shape}")
        extra = sorted(set(found) - set(wanted))
        if extra:
            raise CheckpointError(f"{label}: inputs {extra} are not in its metadata")
        for name in [AUDIO_OUTPUT] + [state_output(s.name) for s in self.info.states]:
            if name not in made:
                raise CheckpointError(f"{label}: the graph lacks the output {name!r} its metadata names")

    def spec_dict(self) -> dict:
        return dict(self.info.spec)

    def num_parameters(self) -> int:
        return self.info.parameters

    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.info.states)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        return tuple(torch.full((batch, *state.shape), state.fill) for state in self.info.states)

    def memory_only(self, state: State) -> State:
        fresh = self.init_state(state[0].shape[0] if state else 1)
        return tuple(kept if entry.memory else new for kept, new, entry in zip(state, fresh, self.info.states))

    def with_memory_of(self, state: State, earlier: State) -> State:
        return tuple(old if entry.memory else now for now, old, entry in zip(state, earlier, self.info.states))

    def step(self, chunk: Tensor, state: State) -> tuple[Tensor, State]:
        audio = chunk.detach().cpu().numpy().astype(np.float32, copy=False)
        channels, length = audio.shape
        if length % self.hop:
            raise ValueError(f"chunk of {length} samples is not a multiple of hop {self.hop}")
        out = np.empty_like(audio)
        arrays = [tensor.numpy() for tensor in state]
        next_state = [np.empty_like(array) for array in arrays]
        run, names = self.session.run, self._outputs
        for channel in range(channels):
            carried = [array[channel] for array in arrays]
            for start in range(0, length, self.hop):
                results = run(names, dict(zip(self._inputs, [audio[channel:channel + 1, start:start + self.hop],
                                                             *carried])))
                out[channel, start:start + self.hop] = results[0][0]
                carried = results[1:]
            for target, value in zip(next_state, carried):
                target[channel] = value
        return torch.from_numpy(out), tuple(torch.from_numpy(array) for array in next_state)


def load_onnx_model(name_or_path: str | None) -> tuple[OnnxModel, dict]:
    """An exported ``.onnx`` file, or a shipped model / checkpoint exported in memory, as an :class:`OnnxModel`;
    returns ``(model, checkpoint-like dict)``."""
    path = resolve_model_path(name_or_path)
    if path.suffix.lower() == ".onnx":
        model = OnnxModel(path, str(path))
        return model, {"name": model.name, "arch": "onnx", "format": "onnx", "exported_arch": model.info.arch,
                       "sample_rate": model.sample_rate}
    from .export import export_proto

    torch_model, checkpoint = load_checkpoint(path)
    name = checkpoint.get("name") or path.stem
    model = OnnxModel(export_proto(torch_model, name).SerializeToString(), str(path))
    return model, dict(checkpoint, name=name)
