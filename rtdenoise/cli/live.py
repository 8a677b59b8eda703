"""``rtdenoise live``: a microphone (or a file) cleaned live to the speakers or a virtual microphone."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rtdenoise.engine.safety import safety_note
from rtdenoise.errors import finite_float

from .options import add_max_attenuation_option, add_model_options


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    live.add_argument("--virtual-speaker", action="store_true",
                      help="offer a virtual output device (NAME speakers) that call apps can play into; what they "
                           "play is denoised (stereo) and played on the default output; with --virtual-mic both "
                           "directions are cleaned at once")
    live.add_argument("--echo-cancel", action="store_true",
                      help="with --virtual-mic: remove what the speakers play from the microphone first (the sound "
                           "server's WebRTC echo canceller, the real speakers as the reference)")
    live.add_argument("--name", default="rtdenoise",
                      help="name of the virtual microphone (default rtdenoise; the speakers are NAME_speakers)")
    add_model_options(live)
    live.set_defaults(func=cmd_live)


def cmd_live(args: argparse.Namespace) -> int:
    from rtdenoise.engine import load_model
    from rtdenoise.errors import require_at_least
    from rtdenoise.live.runner import latency_arg, list_devices

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
    if args.virtual_speaker and (args.no_output or args.file or args.record or args.record_input):
        raise ValueError("--virtual-speaker cleans what call apps play: drop --file, --no-output and the recordings")
    if args.echo_cancel and not args.virtual_mic:
        raise ValueError("--echo-cancel cleans the virtual microphone's input: add --virtual-mic")
    model, _ = load_model(args.model, args.device, args.backend)
    latency = latency_arg(args.latency)
    # With a virtual device, SIGINT/SIGTERM/SIGHUP/SIGQUIT only set an event: a KeyboardInterrupt raised inside
    # pulsectl's C callbacks is printed and dropped, and the session would go on (and keep its modules).
    ending = stop_on_signals() if args.virtual_mic or args.virtual_speaker else None
    with virtual_device(args, "mic") as mic, virtual_device(args, "speaker") as speaker, \
            virtual_device(args, "echo") as echo:
        return run_live(args, model, latency, mic, ending, speaker, echo)


def virtual_device(args: argparse.Namespace, kind: str):
    """The virtual microphone's (or speakers') modules for this session, or nothing without the option."""
    import contextlib

    if kind == "mic" and args.virtual_mic:
        from rtdenoise.live.pulse.virtual_mic import VirtualMic

        return VirtualMic(args.name, microphone=str(args.input or "default microphone"))
    if kind == "speaker" and args.virtual_speaker:
        from rtdenoise.live.pulse.virtual_speaker import VirtualSpeaker

        return VirtualSpeaker(args.name)
    if kind == "echo" and args.echo_cancel:
        from rtdenoise.live.pulse.echo_cancel import EchoCanceller

        return EchoCanceller(args.name, make_default=not args.virtual_speaker)
    return contextlib.nullcontext()


def run_live(args: argparse.Namespace, model, latency, mic, ending=None, speaker=None, echo=None) -> int:
    from rtdenoise.live.delay import delay_parts
    from rtdenoise.live.pulse.device_watch import DeviceWatch
    from rtdenoise.live.runner import DeviceError, LiveConfig, LiveRunner, device_arg

    say = lambda text: print(f"live: {text}", file=sys.stderr, flush=True)  # noqa: E731
    sessions = []  # (label, runner, watch)
    if mic is not None or speaker is None:  # --virtual-speaker alone: only the speakers' direction
        output = args.output
        if mic is not None:
            output = output or "pulse"  # PortAudio's PulseAudio device, into our sink (stream_env below)
            say(f"virtual microphone {mic.name!r} ready" + (f" (removed {mic.removed_leftovers} module(s) a previous "
                                                           "run left behind)" if mic.removed_leftovers else ""))
        if echo is not None:
            say(f"echo canceller between {echo.microphone} and {echo.speakers}: the microphone is "
                f"{echo.source_name}" + ("" if speaker is not None else
                                         f"; the default output is {echo.sink_name} while this runs"))
        stream_env = mic.stream_environment() if mic is not None else None
        if echo is not None:
            stream_env = dict(stream_env or {}, PULSE_SOURCE=echo.source_name)
        input_device = device_arg("pulse" if echo is not None else args.input)
        rate = args.rate
        if rate is None and mic is not None and args.file is None:
            rate = mic.live_rate(input_device)
        config = LiveConfig(input_device=input_device, input_file=args.file,
                            output_device=device_arg(output), play=not args.no_output, sample_rate=rate,
                            chunk_ms=args.chunk_ms, prime_ms=args.prime_ms, record_path=args.record,
                            record_input_path=args.record_input, latency=latency,
                            max_attenuation_db=args.max_attenuation, gate_db=args.gate,
                            ride_out_stalls=mic is not None, stream_env=stream_env,
                            pinned=mic.pinned if mic is not None else None)
        runner = LiveRunner(model, config, on_event=lambda kind, text: say(text) if kind == "notice" else None)
        runner.set_bypass(args.bypass)
        runner.start()
        say(f"streams open ({'file ' + str(args.file) if args.file else 'input ' + str(args.input or 'default')}"
            f" -> {'no output' if args.no_output else 'output ' + str(output or 'default')}), "
            f"{runner.sample_rate} Hz, chunk {runner.stats()['chunk_ms']:.0f} ms, latency "
            f"{delay_parts(runner.stats())}"
            f"{f', at most {args.max_attenuation:g} dB removed' if args.max_attenuation else ''}; Ctrl-C stops")
        sessions.append(("microphone", runner, DeviceWatch(mic, runner, say, "echo-cancelled" if echo is not None
                                                            else device_arg(args.input)) if mic is not None else None))
    if speaker is not None:
        say(f"virtual speakers {speaker.sink_name!r} ready: call apps can play into them")
        config = LiveConfig(input_device="pulse", output_device="pulse", channels=2,
                            sample_rate=speaker.live_rate("pulse") if args.rate is None else args.rate,
                            chunk_ms=args.chunk_ms, prime_ms=0, latency=latency,
                            max_attenuation_db=args.max_attenuation, ride_out_stalls=True,
                            stream_env=dict(speaker.stream_environment(),
                                            **({"PULSE_SINK": echo.sink_name} if echo is not None else {})),
                            pinned=speaker.pinned)
        runner = LiveRunner(model, config, on_event=lambda kind, text: say(f"speakers: {text}")
                            if kind == "notice" else None)
        runner.set_bypass(args.bypass)
        runner.start()
        say(f"speakers' streams open ({speaker.monitor} -> the default output), {runner.sample_rate} Hz stereo, "
            f"latency {delay_parts(runner.stats())}")
        sessions.append(("speakers", runner, DeviceWatch(speaker, runner, say, sleep_when_unused=False)))
    started = time.monotonic()
    stats_line_open = False  # the \r stats line on a terminal: ended before anything else is printed
    try:  # Ctrl-C (or SIGTERM) is the normal way to end a live session: the recording is kept
        while not any(runner.wait(0.25 / len(sessions)) for _, runner, _ in sessions):
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
            if ending is not None and ending.is_set():
                break
            for _, _, watch in sessions:
                if watch is not None:
                    watch.poll()
            if sys.stderr.isatty():
                print("\r" + " | ".join((f"{label}: " if len(sessions) > 1 else "") + stats_line(runner.stats())
                                        for label, runner, _ in sessions), end="", file=sys.stderr, flush=True)
                stats_line_open = True
    except KeyboardInterrupt:
        stats_line_open = True  # the terminal echoed ^C on the current line
    finally:
        for _, runner, watch in sessions:
            runner.stop()
            if watch is not None:
                watch.close()
        if stats_line_open:
            print(file=sys.stderr, flush=True)
    for label, runner, watch in sessions:
        s = runner.stats()
        print((f"{label}: " if len(sessions) > 1 else "")
              + f"processed {s['seconds']:.1f} s live: chunk {s['chunk_ms']:.0f} ms, latency {s['latency_ms']:.0f} ms, "
              f"input overflows {s['input_overflows']}, output underflows {s['output_underflows']}, "
              f"{s['dropped_ms']:.0f} ms dropped to catch up ({s['catch_ups']} times)"
              + (f", {s['stalls']} stall(s) ridden out" if s["stalls"] else "")
              + (f", {watch.mic.what} recreated {watch.recoveries} time(s)" if watch is not None and watch.recoveries
                 else "")
              + (f"; recorded {args.record}" if label == "microphone" and args.record and args.record.exists() else "")
              + safety_note(s["repaired"]))
    for label, runner, _ in sessions:
        if runner.error:
            raise DeviceError(runner.error if len(sessions) == 1 else f"{label}: {runner.error}")
    return 0


def stats_line(s: dict) -> str:
    """The one-line running stats of a live session."""
    return (f"{s['seconds']:7.1f} s  RTF {s['rtf']:.3f}  p99 {s['chunk_p99_ms']:.2f} ms  "
            f"overflows {s['input_overflows']}  underflows {s['output_underflows']}  dropped {s['dropped_ms']:.0f} ms"
            + (f"  stalls {s['stalls']}{' (reopening)' if s.get('stalled') else ''}" if s.get("stalls") else ""))


def stop_on_signals():
    """SIGINT, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT set the returned event instead of raising."""
    import signal
    import threading

    ending = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, lambda signum, frame: ending.set())
    return ending
