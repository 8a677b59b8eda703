"""Sub-commands beyond denoise/info: live, gui and bench (registered from cli.py)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from .errors import finite_float
from .safety import safety_note


def register(sub: argparse._SubParsersAction, add_model_options: Callable[[argparse.ArgumentParser], None],
             add_max_attenuation_option: Callable[[argparse.ArgumentParser], None]) -> None:
    live = sub.add_parser("live", help="denoise a microphone (or a file) live to speakers")
    live.add_argument("--input", default=None, help="input device (index or name, see --list-devices)")
    live.add_argument("--file", type=Path, help="play this file through the live path instead of a microphone")
    live.add_argument("--output", default=None, help="output device (index or name)")
    live.add_argument("--no-output", action="store_true", help="no speakers (file sources are paced by a clock)")
    live.add_argument("--seconds", type=finite_float, default=0, help="stop after this long (0: until Ctrl-C / file end)")
    live.add_argument("--record", type=Path, help="save the cleaned audio to this file")
    live.add_argument("--record-input", type=Path, help="save the raw input to this file")
    live.add_argument("--overwrite", action="store_true", help="replace recordings that already exist")
    live.add_argument("--rate", type=int, default=None,
                      help="device sample rate (default: the microphone's own, usually 48000; the band above "
                           "8 kHz is kept from 32 kHz up)")
    live.add_argument("--chunk-ms", type=finite_float, default=None,
                      help="audio per model step (default: the model's hop, 10 ms); adds to the latency")
    live.add_argument("--prime-ms", type=finite_float, default=500.0,
                      help="audio run first to build up the model's memory (default 500; 0: none)")
    live.add_argument("--latency", default="low", help="PortAudio latency: low, high or seconds")
    add_max_attenuation_option(live)
    live.add_argument("--bypass", action="store_true", help="pass the raw input through (A/B)")
    live.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    add_model_options(live)
    live.set_defaults(func=cmd_live)

    gui = sub.add_parser("gui", help="the desktop app")
    gui.add_argument("--input", type=Path, dest="input_file", help="start with this file as the source")
    gui.add_argument("--screenshot", type=Path, help="save a screenshot of the window before quitting")
    gui.add_argument("--quit-after", type=finite_float, default=0, help="start, run this many seconds, then quit")
    gui.add_argument("--no-output", action="store_true", help="do not play to speakers")
    add_model_options(gui)
    gui.set_defaults(func=cmd_gui)

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
    bench.set_defaults(func=cmd_bench)


def cmd_live(args: argparse.Namespace) -> int:
    from .engine import load_model
    from .errors import require_at_least
    from .realtime import DeviceError, LiveConfig, LiveRunner, device_arg, latency_arg, list_devices

    if args.list_devices:
        inputs, outputs, reason = list_devices()
        if reason:
            print(f"no audio devices: {reason}")
        for title, devices in (("inputs", inputs), ("outputs", outputs)):
            print(f"{title}:")
            for d in devices:
                print(f"  {d['index']:>3}  {d['name']}  ({d['default_samplerate']:.0f} Hz)")
        return 0
    require_at_least("--seconds", args.seconds, 0)  # 0: no limit
    for recording in (args.record, args.record_input):
        if recording is not None and recording.exists() and not args.overwrite:
            raise ValueError(f"{recording}: exists; pass --overwrite to replace it")
    model, _ = load_model(args.model, args.device)
    latency = latency_arg(args.latency)
    config = LiveConfig(input_device=device_arg(args.input), input_file=args.file,
                        output_device=device_arg(args.output), play=not args.no_output, sample_rate=args.rate,
                        chunk_ms=args.chunk_ms, prime_ms=args.prime_ms, record_path=args.record,
                        record_input_path=args.record_input, latency=latency,
                        max_attenuation_db=args.max_attenuation, gate_db=args.gate)
    runner = LiveRunner(model, config)
    runner.set_bypass(args.bypass)
    runner.start()
    print(f"live: streams open ({'file ' + str(args.file) if args.file else 'input ' + str(args.input or 'default')}"
          f" -> {'no output' if args.no_output else 'output ' + str(args.output or 'default')}), "
          f"{runner.sample_rate} Hz, chunk {runner.stats()['chunk_ms']:.0f} ms"
          f"{f', at most {args.max_attenuation:g} dB removed' if args.max_attenuation else ''}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    try:  # Ctrl-C (or SIGTERM) is the normal way to end a live session: the recording is kept
        while not runner.wait(0.25):
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
            if sys.stderr.isatty():
                s = runner.stats()
                print(f"\r{s['seconds']:7.1f} s  RTF {s['rtf']:.3f}  p99 {s['chunk_p99_ms']:.2f} ms  "
                      f"overflows {s['input_overflows']}  underflows {s['output_underflows']}  "
                      f"dropped {s['dropped_ms']:.0f} ms", end="",
                      file=sys.stderr)
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        runner.stop()
    s = runner.stats()
    print(f"processed {s['seconds']:.1f} s live: chunk {s['chunk_ms']:.0f} ms, latency {s['latency_ms']:.0f} ms, "
          f"input overflows {s['input_overflows']}, output underflows {s['output_underflows']}, "
          f"{s['dropped_ms']:.0f} ms dropped to catch up ({s['catch_ups']} times)"
          + (f"; recorded {args.record}" if args.record and args.record.exists() else "")
          + safety_note(s["repaired"]))
    if runner.error:
        raise DeviceError(runner.error)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from .app.main import run_app

    return run_app(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench, print_report
    from .resample import check_sample_rate
    from .errors import require_at_least, require_positive

    require_positive("--chunk-ms", args.chunk_ms)
    for option, value, smallest in (("--seconds", args.seconds, 0.1), ("--repeats", args.repeats, 1),
                                    ("--threads", args.threads, 1), ("--paced-seconds", args.paced_seconds, 0)):
        require_at_least(option, value, smallest)
    report = run_bench(args.model, args.device, args.threads, args.chunk_ms, args.seconds, args.repeats,
                       fast_path=not args.no_fast_path,
                       paced_seconds=args.paced_seconds, rate=args.rate and check_sample_rate(args.rate))
    print(json.dumps(report, indent=1) if args.json else print_report(report))
    return 0
