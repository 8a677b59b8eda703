"""The ``rtdenoise`` command: one ``cmd_<name>(args) -> int`` per sub-command."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .audio_io import AUDIO_SUFFIXES, AudioError
from .errors import INPUT_ERRORS, OneLineParser, finite_float, run_command
from .safety import safety_note



class UsageError(Exception):
    """Arguments that cannot work together; the message says what to do."""


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="shipped model name or checkpoint path (default: the best shipped)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if present)")


def add_max_attenuation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-attenuation", type=finite_float, default=None, metavar="DB",
                        help="remove at most DB of noise, keeping some of the room (e.g. 12; default: no limit)")
    parser.add_argument("--gate", type=finite_float, default=None, metavar="DBFS",
                        help="voice gate: silence where the cleaned voice stays below DBFS (e.g. -45), words kept "
                             "whole; adds 60 ms of latency (default: off)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rtdenoise", description="Streaming, real-time speech denoiser.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    denoise = sub.add_parser("denoise", help="clean audio files or folders")
    denoise.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and/or folders")
    denoise.add_argument("-o", "--output", required=True,
                         help="output file (its extension picks the format), or folder for several inputs")
    _add_model_options(denoise)
    denoise.add_argument("--chunk-ms", type=finite_float, default=None,
                         help="model step size in ms (default: the model's hop; output is the same for any size)")
    add_max_attenuation_option(denoise)
    denoise.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    denoise.add_argument("--jobs", type=int, default=1, help="worker processes for several files (default 1)")
    denoise.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                         help="run the files as tasks on a Ray cluster: no ADDRESS starts a local one, 'auto' or "
                              "ray://host:port joins one (paths must be reachable from every node; "
                              "needs the [cluster] extra); --jobs then caps the workers")
    denoise.add_argument("--quiet", action="store_true", help="no progress bar")
    denoise.set_defaults(func=cmd_denoise)

    info = sub.add_parser("info", help="describe a model checkpoint")
    info.add_argument("model", nargs="?", default=None, help="shipped model name or checkpoint path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=cmd_models)

    from . import commands_extra  # live, gui, bench: their own module keeps this one short

    commands_extra.register(sub, _add_model_options, add_max_attenuation_option)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument already said in one line
        return int(done.code or 0)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return run_command(lambda: args.func(args), "rtdenoise", "interrupted; unfinished outputs were removed",
                       INPUT_ERRORS + (AudioError, UsageError))


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


# -- denoise -----------------------------------------------------------------------------
def plan_outputs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """Pair every input file with its output path; folders keep relative names."""
    pairs: list[tuple[Path, Path]] = []
    output_path = Path(output)
    many = len(inputs) > 1 or any(Path(i).is_dir() for i in inputs)
    folders = {item: audio_files_in(Path(item), skip=output_path) for item in inputs if Path(item).is_dir()}
    if many and output_path.suffix.lower() in AUDIO_SUFFIXES and not output_path.is_dir():
        raise UsageError(f"{output}: several inputs need an output folder, not a file name")
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = folders[item]
            pairs += [(f, output_path / path.name / f.relative_to(path)) if len(inputs) > 1
                      else (f, output_path / f.relative_to(path)) for f in files]
        elif many:
            pairs.append((path, output_path / path.name))
        else:
            pairs.append((path, output_path / path.name if output_path.is_dir() else output_path))
    return pairs


def audio_files_in(folder: Path, skip: Path | None = None) -> list[Path]:
    """Audio files below ``folder`` (hidden and partial files, and those below ``skip``, left out); error if none.

    ``skip`` is the output folder: cleaning ``rec/`` into ``rec/clean/`` a second time
    must not take the first run's outputs as inputs.
    """
    skipped = skip.resolve() if skip is not None and skip.resolve() != folder.resolve() else None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                   and not p.name.startswith(".")
                   and not (skipped is not None and p.resolve().is_relative_to(skipped)))
    if not files:
        raise AudioError(f"{folder}: is a folder with no audio files in it")
    return files


def check_targets(pairs: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Refuse to overwrite inputs always, and existing outputs unless asked."""
    sources = {p.resolve() for p, _ in pairs if p.exists()}
    seen: set[Path] = set()
    for _, target in pairs:
        resolved = target.resolve()
        if resolved in sources:
            raise UsageError(f"{target}: is an input; refusing to overwrite it (choose another output)")
        if resolved in seen:
            raise UsageError(f"{target}: two inputs would write the same output")
        seen.add(resolved)
        if target.exists() and not overwrite:
            raise UsageError(f"{target}: exists; pass --overwrite to replace it")


def cmd_denoise(args: argparse.Namespace) -> int:
    from .audio_io import output_format, probe
    from .batch import denoise_many
    from .engine import dry_gain_for, load_model
    from .progress import ProgressBar

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.ray:
        from .cluster import FileJob, denoise_on_ray, import_ray

        import_ray()  # missing Ray is a one-line error before any work
    dry_gain_for(args.max_attenuation)  # a bad limit fails before any file is read
    if args.gate is not None:
        from .gate import GateSettings, VoiceGate

        VoiceGate(16000, 1, GateSettings(threshold_db=args.gate))  # and a bad gate level
    if args.output == "-":
        raise UsageError("-o -: writing to standard output is not supported; give a file or folder name")
    if "-" in args.inputs:
        raise UsageError("-: reading standard input is not supported; give file or folder names")
    pairs = plan_outputs(args.inputs, args.output)
    check_targets(pairs, args.overwrite)
    infos = {source: probe(source) for source, _ in pairs}  # fail before any work on a bad input
    for source, target in pairs:
        output_format(target, infos[source])  # and on an output type that cannot be written
    model, checkpoint = load_model(args.model, args.device)
    total_seconds = sum(i.seconds for i in infos.values())

    with ProgressBar(total_seconds, unit="s audio", enabled=not args.quiet) as bar:
        def on_file(source: Path, target: Path, summary: dict) -> None:
            note = safety_note(summary)
            bar.write(f"{source} -> {target}{note}")
            if note and args.quiet:
                print(f"rtdenoise: warning: {source}:{note}", file=sys.stderr)

        if args.ray:
            failed = denoise_on_ray(pairs, FileJob(args.model, args.device, args.chunk_ms, args.max_attenuation,
                                                   args.overwrite, args.gate),
                                    None if args.ray == "local" else args.ray, on_file,
                                    on_error=lambda source, error: bar.write(f"{source}: failed: {error}"),
                                    on_progress=bar.advance, workers=args.jobs if args.jobs > 1 else None)
            if failed:
                raise ValueError(f"{failed} of {len(pairs)} file(s) failed (reported above); the others were written")
        else:
            denoise_many(pairs, model, args.model, args.device, args.chunk_ms, args.jobs, on_file,
                         on_progress=bar.advance, max_attenuation_db=args.max_attenuation, overwrite=args.overwrite,
                         gate_db=args.gate)
    print(f"wrote {len(pairs)} file(s) with model {checkpoint.get('name', args.model or 'default')}: "
          f"{', '.join(str(t) for _, t in pairs[:3])}{' ...' if len(pairs) > 3 else ''}")
    return 0


# -- info / models -----------------------------------------------------------------------
def describe_checkpoint(name_or_path: str | None) -> dict:
    from rtdenoise.models import load_checkpoint, resolve_model_path

    from .offline import chunk_samples_for

    path = resolve_model_path(name_or_path)
    model, checkpoint = load_checkpoint(path)
    chunk = chunk_samples_for(model, None)
    return {
        "name": checkpoint.get("name", path.stem),
        "path": str(path),
        "arch": model.arch,
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
        print(f"{'training.' + key:<16} {value}")
    for key, value in _flatten(description["metrics"]).items():
        print(f"metric {key:<24} {value:.3f}" if isinstance(value, float) else f"metric {key:<24} {value}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rtdenoise.models import default_model_name, list_pretrained

    import shutil
    import textwrap

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
