"""``rtdenoise info`` and ``rtdenoise models``: what a checkpoint is, which models ship."""
from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="describe a model checkpoint or exported .onnx file")
    info.add_argument("model", nargs="?", default=None, help="shipped model name, checkpoint or .onnx path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=cmd_models)


def describe_checkpoint(name_or_path: str | None) -> dict:
    from rtdenoise.files.offline import chunk_samples_for
    from rtdenoise.models import load_checkpoint, resolve_model_path

    path = resolve_model_path(name_or_path)
    if path.suffix.lower() == ".onnx":
        from rtdenoise.portable import OnnxModel

        model = OnnxModel(path, str(path))
        info = model.info
        checkpoint = {"name": info.model, "spec": info.spec, "trained": True, "arch": f"{info.arch} (ONNX export)",
                      "notes": f"exported {info.arch} model (rtdenoise {info.rtdenoise_version}); state: "
                               + ", ".join(f"{s.name} {tuple(s.shape)} from {s.fill:g}" for s in info.states)}
    else:
        model, checkpoint = load_checkpoint(path)
    chunk = chunk_samples_for(model, None)
    return {
        "name": checkpoint.get("name", path.stem),
        "path": str(path),
        "arch": checkpoint.get("arch", model.arch) if model.arch == "onnx" else model.arch,
        "spec": checkpoint["spec"],
        "sample_rate": model.sample_rate,
        "hop_samples": model.hop,
        "latency_samples": model.latency_samples,
        "latency_ms": 1000.0 * model.latency_samples / model.sample_rate,
        "default_chunk_ms": 1000.0 * chunk / model.sample_rate,
        "algorithmic_latency_ms": 1000.0 * (model.latency_samples + chunk) / model.sample_rate,
        "parameters": model.num_parameters(),
        "band": f"0-{model.sample_rate / 2000:g} kHz",  # the audio band it sees and returns
        "trained": bool(checkpoint.get("trained", False)),
        "notes": checkpoint.get("notes", ""),
        "training": checkpoint.get("training", {}),
        "metrics": checkpoint.get("metrics", {}),
    }


def cmd_info(args: argparse.Namespace) -> int:
    description = describe_checkpoint(args.model)
    if args.json:
        print(json.dumps(description, indent=2, default=str))
        return 0
    print(f"model            {description['name']}  ({description['path']})")
    print(f"architecture     {description['arch']}  spec {json.dumps(description['spec'])}")
    print(f"sample rate      {description['sample_rate']} Hz, hop {description['hop_samples']} samples")
    print(f"latency          {description['latency_ms']:.1f} ms model + {description['default_chunk_ms']:.0f} ms chunk = "
          f"{description['algorithmic_latency_ms']:.1f} ms algorithmic")
    print(f"band             {description['band']} denoised by the model; other rates are resampled to "
          f"{description['sample_rate']} Hz and back, and from 32 kHz up the band above "
          f"{description['sample_rate'] / 2000:g} kHz is kept and follows the model's top-octave gain")
    print(f"parameters       {description['parameters']:,}")
    print(f"trained          {'yes' if description['trained'] else 'NO (untrained weights)'}")
    if description["notes"]:
        print(f"notes            {description['notes']}")
    for key, value in description["training"].items():
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            print(f"{'training.' + key:<16} {value[0]}")  # one stage (or averaged file) a line
            for item in value[1:]:
                print(f"{'':<16} {item}")
        else:
            print(f"{'training.' + key:<16} {value}")
    for key, value in _flatten(description["metrics"]).items():
        print(f"metric {key:<24} {value:.3f}" if isinstance(value, float) else f"metric {key:<24} {value}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import shutil
    import textwrap

    from rtdenoise.models import default_model_name, list_pretrained

    default = default_model_name()
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    for name in list_pretrained():
        description = describe_checkpoint(name)
        star = "*" if name == default else " "
        print(f"{star} {name:<16} {description['arch']:<9} {description['parameters']:>9,} params  "
              f"{description['algorithmic_latency_ms']:5.1f} ms  {description.get('band', '')}")
        for line in textwrap.wrap(description["notes"], width - 4, break_on_hyphens=False,
                                  break_long_words=False):  # whole words, nothing cut
            print(f"    {line}")
    print("(* the default; rtdenoise info NAME for all it knows)")
    return 0


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
