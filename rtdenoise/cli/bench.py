"""``rtdenoise bench``: measured real-time factor, chunk times, latency and memory."""
from __future__ import annotations

import argparse
import json

from rtdenoise.errors import finite_float


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure real-time factor, chunk times, latency and memory")
    bench.add_argument("--model", action="append", default=None, help="model(s) to measure (default: all shipped)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda")
    bench.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    bench.add_argument("--chunk-ms", type=finite_float, default=10.0, help="audio per model step (default 10)")
    bench.add_argument("--seconds", type=finite_float, default=20.0, help="audio to process per measurement")
    bench.add_argument("--repeats", type=int, default=3, help="runs per figure; medians are reported")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--paced-seconds", type=finite_float, default=5.0,
                       help="also feed chunks in real time (one per chunk duration) for this long; 0: skip")
    bench.add_argument("--rate", type=int, default=None,
                       help="stream sample rate, e.g. 48000 (default: the model's): resampling and, from 32 kHz, "
                            "the kept high band are measured too")
    bench.add_argument("--no-fast-path", action="store_true",
                       help="plain model.step per chunk (no CUDA graph, no numpy CPU kernels), for comparison")
    bench.add_argument("--backend", action="append", choices=["kernel", "torch", "onnx"], default=None,
                       help="measure under this backend (repeatable, side by side): kernel (the engine's numpy "
                            "kernels / CUDA graph; default), torch (plain model.step), onnx (onnxruntime)")
    bench.add_argument("--streams", type=int, action="append", metavar="N",
                       help="measure N concurrent streams stepped as one batch (repeatable)")
    bench.add_argument("--max-streams", type=int, metavar="LIMIT",
                       help="search the largest real-time stream count up to LIMIT (p99 hop time under the hop)")
    bench.add_argument("--muted", type=finite_float, default=0.0, metavar="PERCENT",
                       help="with --streams/--max-streams: this share of the streams is muted (digital silence)")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from rtdenoise.bench.one_stream import print_report, run_bench
    from rtdenoise.engine.resample import check_sample_rate
    from rtdenoise.errors import require_at_least, require_positive

    require_positive("--chunk-ms", args.chunk_ms)
    for option, value, smallest in (("--seconds", args.seconds, 0.1), ("--repeats", args.repeats, 1),
                                    ("--threads", args.threads, 1), ("--paced-seconds", args.paced_seconds, 0)):
        require_at_least(option, value, smallest)
    if args.streams or args.max_streams:
        return bench_streams(args)
    if args.muted:
        raise ValueError("--muted goes with --streams or --max-streams")
    report = run_bench(args.model, args.device, args.threads, args.chunk_ms, args.seconds, args.repeats,
                       fast_path=not args.no_fast_path,
                       paced_seconds=args.paced_seconds, rate=args.rate and check_sample_rate(args.rate),
                       backends=args.backend)
    print(json.dumps(report, indent=1) if args.json else print_report(report))
    return 0


def bench_streams(args: argparse.Namespace) -> int:
    from rtdenoise.bench.many_streams import StreamBenchOptions, print_stream_report, run_stream_bench
    from rtdenoise.errors import require_at_least
    from rtdenoise.models.registry import default_model_name

    for count in args.streams or []:
        require_at_least("--streams", count, 1)
    if args.max_streams is not None:
        require_at_least("--max-streams", args.max_streams, 1)
    if args.model and len(args.model) > 1:
        raise ValueError("--streams and --max-streams measure one --model at a time")
    if not 0 <= args.muted <= 100:
        raise ValueError(f"--muted {args.muted:g}: a percentage, 0 to 100")
    report = run_stream_bench(StreamBenchOptions(args.model[0] if args.model else default_model_name(), args.device,
                                                 args.threads, args.streams or [], args.max_streams,
                                                 muted=args.muted / 100))
    print(json.dumps(report, indent=1) if args.json else print_stream_report(report))
    return 0
