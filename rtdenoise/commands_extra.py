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
    live.add_argument("--virtual-mic", action="store_true",
                      help="offer the cleaned audio as a microphone other programs can pick (PulseAudio/PipeWire); "
                           "removed on exit; the model sleeps while nobody records from it")
    live.add_argument("--name", default="rtdenoise", help="name of the virtual microphone (default rtdenoise)")
    add_model_options(live)
    live.set_defaults(func=cmd_live)

    autostart = sub.add_parser("autostart", help="start the virtual microphone at login (XDG autostart entry)")
    switch = autostart.add_mutually_exclusive_group(required=True)
    switch.add_argument("--enable", action="store_true", help="write the entry (~/.config/autostart)")
    switch.add_argument("--disable", action="store_true", help="remove it")
    autostart.add_argument("--name", default="rtdenoise", help="name of the virtual microphone")
    autostart.add_argument("--input", default=None, help="microphone (default: follow the default input)")
    add_model_options(autostart)
    autostart.set_defaults(func=cmd_autostart)

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
    bench.add_argument("--streams", type=int, action="append", metavar="N",
                       help="measure N concurrent streams stepped as one batch (repeatable)")
    bench.add_argument("--max-streams", type=int, metavar="LIMIT",
                       help="search the largest real-time stream count up to LIMIT (p99 hop time under the hop)")
    bench.set_defaults(func=cmd_bench)


def bench_streams(args: argparse.Namespace) -> int:
    from .bench_streams import print_stream_report, run_stream_bench
    from .errors import require_at_least
    from .models.registry import default_model_name

    for count in args.streams or []:
        require_at_least("--streams", count, 1)
    if args.max_streams is not None:
        require_at_least("--max-streams", args.max_streams, 1)
    if args.model and len(args.model) > 1:
        raise ValueError("--streams and --max-streams measure one --model at a time")
    report = run_stream_bench(args.model[0] if args.model else default_model_name(), args.device, args.threads,
                              args.streams or [], args.max_streams)
    print(json.dumps(report, indent=1) if args.json else print_stream_report(report))
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from .engine import load_model
    from .errors import require_at_least
    from .realtime import latency_arg, list_devices

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
    if args.virtual_mic and (args.no_output or args.file):
        raise ValueError("--virtual-mic cleans a microphone into the virtual one: drop --no-output and --file")
    model, _ = load_model(args.model, args.device)
    latency = latency_arg(args.latency)
    # With the virtual microphone, SIGINT/SIGTERM only set an event: a KeyboardInterrupt raised inside
    # pulsectl's C callbacks is printed and dropped, and the session would go on (and keep its modules).
    ending = stop_on_signals() if args.virtual_mic else None
    with virtual_mic_for(args) as mic:
        return run_live(args, model, latency, mic, ending)


def virtual_mic_for(args: argparse.Namespace):
    """The virtual microphone's modules for this session, or nothing without --virtual-mic."""
    import contextlib

    if not args.virtual_mic:
        return contextlib.nullcontext()
    from .virtual_mic import VirtualMic

    return VirtualMic(args.name, microphone=str(args.input or "default microphone"))


def run_live(args: argparse.Namespace, model, latency, mic, ending=None) -> int:
    from .realtime import DeviceError, LiveConfig, LiveRunner, device_arg

    output = args.output
    if mic is not None:
        output = output or "pulse"  # PortAudio's PulseAudio device, routed into our sink here
        mic.route_output_here()
        print(f"live: virtual microphone {mic.name!r} ready"
              + (f" (removed {mic.removed_leftovers} module(s) a previous run left behind)"
                 if mic.removed_leftovers else ""), file=sys.stderr, flush=True)
    config = LiveConfig(input_device=device_arg(args.input), input_file=args.file,
                        output_device=device_arg(output), play=not args.no_output, sample_rate=args.rate,
                        chunk_ms=args.chunk_ms, prime_ms=args.prime_ms, record_path=args.record,
                        record_input_path=args.record_input, latency=latency,
                        max_attenuation_db=args.max_attenuation, gate_db=args.gate)
    runner = LiveRunner(model, config)
    runner.set_bypass(args.bypass)
    runner.start()
    print(f"live: streams open ({'file ' + str(args.file) if args.file else 'input ' + str(args.input or 'default')}"
          f" -> {'no output' if args.no_output else 'output ' + str(output or 'default')}), "
          f"{runner.sample_rate} Hz, chunk {runner.stats()['chunk_ms']:.0f} ms, latency "
          f"{runner.stats()['latency_ms']:.0f} ms + {runner.stats()['device_latency_ms']:.0f} ms device buffers"
          f"{f', at most {args.max_attenuation:g} dB removed' if args.max_attenuation else ''}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    from .virtual_mic import MicWatch

    watch = MicWatch(mic, runner, lambda text: print(f"live: {text}", file=sys.stderr, flush=True)) \
        if mic is not None else None
    try:  # Ctrl-C (or SIGTERM) is the normal way to end a live session: the recording is kept
        while not runner.wait(0.25):
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
            if ending is not None and ending.is_set():
                break
            if watch is not None:
                watch.poll()
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


def stop_on_signals():
    """SIGINT/SIGTERM set the returned event instead of raising."""
    import signal
    import threading

    ending = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, frame: ending.set())
    return ending


def cmd_autostart(args: argparse.Namespace) -> int:
    from . import autostart

    if args.disable:
        path = autostart.disable()
        print(f"removed {path}" if path else f"no autostart entry in {autostart.autostart_dir()}; nothing to do")
        return 0
    live_args = ["--name", args.name] + (["--input", args.input] if args.input else []) \
        + (["--model", args.model] if args.model else [])
    print(f"wrote {autostart.enable(live_args)}: the virtual microphone {args.name!r} starts at your next login")
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
    if args.streams or args.max_streams:
        return bench_streams(args)
    report = run_bench(args.model, args.device, args.threads, args.chunk_ms, args.seconds, args.repeats,
                       fast_path=not args.no_fast_path,
                       paced_seconds=args.paced_seconds, rate=args.rate and check_sample_rate(args.rate))
    print(json.dumps(report, indent=1) if args.json else print_report(report))
    return 0
