"""``rtdenoise denoise``: clean audio files and folders."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtdenoise.engine.safety import safety_note
from rtdenoise.errors import finite_float
from rtdenoise.files.audio_io import AUDIO_SUFFIXES, AudioError, AudioInfo, probe

from .options import UsageError, add_max_attenuation_option, add_model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    denoise = sub.add_parser("denoise", help="clean audio files or folders")
    denoise.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and/or folders")
    denoise.add_argument("-o", "--output", required=True,
                         help="output file (its extension picks the format), or folder for several inputs")
    add_model_options(denoise)
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
    from rtdenoise.engine import dry_gain_for, load_model
    from rtdenoise.files.audio_io import output_format
    from rtdenoise.files.batch import denoise_many
    from rtdenoise.files.progress import ProgressBar

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.ray:
        from rtdenoise.files.cluster import FileJob, denoise_on_ray, import_ray

        import_ray()  # missing Ray is a one-line error before any work
    dry_gain_for(args.max_attenuation)  # a bad limit fails before any file is read
    if args.gate is not None:
        from rtdenoise.engine.gate import GateSettings, VoiceGate

        VoiceGate(16000, 1, GateSettings(threshold_db=args.gate))  # and a bad gate level
    if args.output == "-":
        raise UsageError("-o -: writing to standard output is not supported; give a file or folder name")
    if "-" in args.inputs:
        raise UsageError("-: reading standard input is not supported; give file or folder names")
    pairs = plan_outputs(args.inputs, args.output)
    check_targets(pairs, args.overwrite)
    infos, unreadable = probe_inputs(pairs)  # before any work; several files: the readable ones go on
    planned = len(pairs)
    pairs = [(source, target) for source, target in pairs if source not in unreadable]
    for reason in unreadable.values():
        print(f"rtdenoise: skipped {reason}", file=sys.stderr)
    for source, target in pairs:
        output_format(target, infos[source])  # and on an output type that cannot be written
    if args.backend == "onnx" and (args.jobs > 1 or args.ray) and not str(args.model or "").endswith(".onnx"):
        raise UsageError("--backend onnx with --jobs or --ray: export the model once (rtdenoise export MODEL -o "
                         "model.onnx) and pass --model model.onnx, so every worker runs the same file")
    model, checkpoint = load_model(args.model, args.device, args.backend)
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
    if unreadable:
        raise AudioError(f"{len(unreadable)} of {planned} file(s) could not be read (named above); "
                         f"the other {len(pairs)} were written")
    return 0


def probe_inputs(pairs: list[tuple[Path, Path]]) -> tuple[dict[Path, AudioInfo], dict[Path, str]]:
    """Each input's description, and the inputs that cannot be read with the reason (one line each). One input
    alone: its error is raised; several: the unreadable ones are left out and the others cleaned (as batch tools
    do)."""
    infos: dict[Path, AudioInfo] = {}
    unreadable: dict[Path, str] = {}
    for source, _ in pairs:
        try:
            infos[source] = probe(source)
        except AudioError as error:
            if len(pairs) == 1:
                raise
            unreadable[source] = str(error)
    if unreadable and len(unreadable) == len(pairs):
        raise AudioError(f"none of the {len(pairs)} files could be read (the first: {next(iter(unreadable.values()))})")
    return infos, unreadable
