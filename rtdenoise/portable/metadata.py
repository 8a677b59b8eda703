"""What an exported file promises its user: names, shapes and first values of the state, rates, latency.

Stored as the ONNX model's ``metadata_props`` (plain strings, readable by any onnxruntime binding):

* ``format`` ``rtdenoise-onnx``, ``format_version`` (this reader takes 1), ``rtdenoise_version``;
* ``model``, ``arch``, ``parameters``, ``spec`` (JSON);
* ``sample_rate``, ``hop`` (samples per call: the model's hop, 10 ms for a hop-1 FIR model),
  ``window`` (the analysis window, or ``none``), ``latency_samples`` (output n estimates clean n - latency);
* ``states`` (JSON list, in input order): ``name``, ``shape`` (for one stream; the GRU's hidden state is
  ``(layers, 1, hidden)``), ``fill`` (every element's first
  value) and ``memory`` (kept when the stream is warmed up and restarted; the rest are sample buffers);
* ``high_band_exponent`` (band models: how the engine drives 8-24 kHz from the top octave's gain).

Inputs are ``audio`` ``(1, hop)`` and ``state_<name>``; outputs ``enhanced`` ``(1, hop)`` and ``next_<name>``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from rtdenoise.models import CheckpointError

FORMAT = "rtdenoise-onnx"
FORMAT_VERSION = 1
AUDIO_INPUT = "audio"
AUDIO_OUTPUT = "enhanced"


def state_input(name: str) -> str:
    return f"state_{name}"


def state_output(name: str) -> str:
    return f"next_{name}"


@dataclass
class StateEntry:
    """One piece of carried state as the file holds it (batch 1)."""

    name: str
    shape: list[int]
    fill: float = 0.0
    memory: bool = False


@dataclass
class OnnxInfo:
    """The metadata of an exported file (see the module docstring)."""

    model: str
    arch: str
    sample_rate: int
    hop: int
    latency_samples: int
    window: str
    states: list[StateEntry]
    parameters: int = 0
    spec: dict = field(default_factory=dict)
    high_band_exponent: float | None = None
    rtdenoise_version: str = ""

    def to_metadata(self) -> dict[str, str]:
        """Plain strings for ``metadata_props``."""
        data = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "rtdenoise_version": self.rtdenoise_version,
                "model": self.model, "arch": self.arch, "parameters": str(self.parameters),
                "spec": json.dumps(self.spec), "sample_rate": str(self.sample_rate), "hop": str(self.hop),
                "window": self.window, "latency_samples": str(self.latency_samples),
                "states": json.dumps([asdict(state) for state in self.states])}
        if self.high_band_exponent is not None:
            data["high_band_exponent"] = repr(self.high_band_exponent)
        return data

    @classmethod
    def from_metadata(cls, data: dict[str, str], source: str) -> OnnxInfo:
        """Parse and check ``metadata_props``; a file that is not ours, or is newer, is refused in one line."""
        if data.get("format") != FORMAT:
            raise CheckpointError(f"{source}: an ONNX file without rtdenoise's metadata (export one with "
                                  "`rtdenoise export MODEL -o FILE.onnx`)")
        try:
            version = int(data.get("format_version", ""))
        except ValueError:
            version = -1
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{source}: exported in format {data.get('format_version')!r} (rtdenoise "
                                  f"{data.get('rtdenoise_version') or '?'}); this rtdenoise reads format "
                                  f"{FORMAT_VERSION}: export it again with this version")
        try:
            states = [StateEntry(str(s["name"]), [int(d) for d in s["shape"]], float(s["fill"]), bool(s["memory"]))
                      for s in json.loads(data["states"])]
            info = cls(model=data["model"], arch=data["arch"], sample_rate=int(data["sample_rate"]),
                       hop=int(data["hop"]), latency_samples=int(data["latency_samples"]), window=data["window"],
                       states=states, parameters=int(data.get("parameters", 0)),
                       spec=json.loads(data.get("spec", "{}")),
                       high_band_exponent=float(data["high_band_exponent"]) if "high_band_exponent" in data else None,
                       rtdenoise_version=data.get("rtdenoise_version", ""))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: damaged rtdenoise metadata ({type(error).__name__}: {error})") from None
        if info.sample_rate <= 0 or info.hop <= 0 or info.latency_samples < 0 or any(
                not state.shape or min(state.shape) < 1 for state in info.states):
            raise CheckpointError(f"{source}: impossible rtdenoise metadata (rate {info.sample_rate}, hop {info.hop}, "
                                  f"states {[s.shape for s in info.states]})")
        return info
