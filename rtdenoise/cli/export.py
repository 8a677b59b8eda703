"""``rtdenoise export``: a model as an ONNX file that steps one chunk at a time with explicit state."""
from __future__ import annotations

import argparse
from pathlib import Path

PARITY_LIMIT = 1e-4    # the file must follow the model this closely (peak-normalised) or it is not written
PARITY_SECONDS = 3.0   # of the bundled recording, stepped both ways


def add_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="write a model as an ONNX file (state as explicit inputs/outputs)")
    export.add_argument("model", nargs="?", default=None, help="shipped model name or checkpoint path "
                        "(default: the best shipped)")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import soundfile as sf

    from rtdenoise.models import load_checkpoint, resolve_model_path
    from rtdenoise.portable.export import export_file
    from rtdenoise.portable.parity import parity_error
    from rtdenoise.portable.runtime_model import OnnxModel

    from .options import UsageError

    out = Path(args.output)
    source = resolve_model_path(args.model)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"{out}: the output must end in .onnx")
    if out.resolve() == source.resolve():
        raise UsageError(f"{out}: is the model being exported; refusing to overwrite it")
    model, checkpoint = load_checkpoint(source)
    name = checkpoint.get("name") or source.stem
    written = export_file(model, name, out, overwrite=args.overwrite)
    exported = OnnxModel(written, str(written))
    audio, rate = sf.read(str(Path(__file__).resolve().parents[1] / "samples" / "noisy_speech.wav"), dtype="float32")
    if rate != model.sample_rate:  # a 48 kHz model: the 16 kHz recording's band is enough to compare the two
        from scipy.signal import resample_poly

        audio = resample_poly(audio, model.sample_rate, rate).astype("float32")
    error = parity_error(model, exported, audio[: int(PARITY_SECONDS * model.sample_rate)])
    if not error <= PARITY_LIMIT:
        written.unlink()
        raise RuntimeError(f"{name}: the exported graph strays {error:.1e} from the model (limit {PARITY_LIMIT:g}); "
                           "nothing written")
    info = exported.info
    states = ", ".join(f"{s.name} {tuple(s.shape)}" for s in info.states)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB, {info.arch}, {info.parameters:,} parameters): "
          f"{info.hop} samples at {info.sample_rate} Hz per call, latency {1000 * info.latency_samples / info.sample_rate:g} ms; "
          f"state: {states}")
    print(f"checked: onnx.checker passes; onnxruntime, stepped over {PARITY_SECONDS:g} s of the bundled recording, "
          f"follows the model within {error:.1e} of its peak")
    return 0
