"""Denoised speakers (issue #30): a program plays into "NAME speakers" and the real speakers get it cleaned;
with the virtual microphone beside it, both directions run in one process. PulseAudio and PipeWire."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtdenoise.live.pulse.virtual_speaker import VirtualSpeaker
from tests.alignment import lag_of
from tests.live_process import said_until, start_live, threads_of_silent
from tests.test_virtual_mic import DATA, NAME, OWN_DEFAULT_SESSIONS, _modules, aligned_seconds, sink_rate

pytest.importorskip("pulsectl")
pytestmark = [pytest.mark.audio_device, pytest.mark.slow]
SPEAKERS = f"{NAME}_speakers"


def _speaker_modules(env: dict) -> list[str]:
    code = ("from rtdenoise.live.pulse.virtual_mic import project_modules; from rtdenoise.live.pulse.virtual_speaker import "
            f"VirtualSpeaker; print(project_modules({NAME!r}, VirtualSpeaker))")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return eval(run.stdout)


def _start(env: dict, *options: str) -> tuple[subprocess.Popen, str]:
    """The live command once the speakers' streams are open (and what it said so far), as ``_start_live``."""
    return start_live(env, *options, "--name", NAME, "--latency", "high", "--prime-ms", "0",
                      opened="speakers' streams open")


def _offline(path, tmp_path) -> np.ndarray:
    out = tmp_path / "offline.wav"
    subprocess.run([sys.executable, "-m", "rtdenoise", "denoise", str(path), "-o", str(out), "--quiet"], check=True,
                   timeout=120)
    return sf.read(str(out), dtype="float32")[0]


def _correlation(heard: np.ndarray, reference: np.ndarray, second: int = 16000) -> float:
    """Median correlation of the reference's seconds (every half second) with what was heard."""
    scores = [float(np.corrcoef(piece, target)[0, 1]) for target, piece in
              aligned_seconds(heard, reference, range(0, len(reference) - second + 1, second // 2),
                              lag_of(heard, reference))
              if target.std() > 0]
    assert len(scores) >= 4, "too little overlap"
    return float(np.median(scores))


# A busy 2-core machine now and then glitches a session with both directions running (in a run of all PipeWire
# tests: 0.68, the speakers' worker 3 times behind, 170 ms dropped, 29 underflows; once in CI on PulseAudio: 0.79;
# 12 of 12 passed when repeated alone): the speakers get two sessions to be heard right.
SESSIONS = 2


def _speakers_session(sound_daemon, recording: Path, with_mic: bool) -> tuple[np.ndarray, str, str]:
    """Play the noisy file into the virtual speakers while the real speakers' monitor is recorded: what was heard
    there, and live's stdout and stderr."""
    server = sound_daemon.server
    env = dict(sound_daemon.env, PULSE_SOURCE="rt_in.monitor")
    sound_daemon.pactl("set-default-sink", "rt_out")   # the real speakers
    live, opened = _start(env, "--virtual-speaker", *(["--virtual-mic", "--input", "pulse"] if with_mic else []))
    try:
        sinks = sound_daemon.pactl("list", "short", "sinks")
        assert SPEAKERS in sinks
        assert f"{sink_rate(sinks, SPEAKERS)} Hz stereo" in opened, (sinks, opened)   # no resampling either way
        with open(recording, "wb") as sink:
            listener = subprocess.Popen(["parec", "-s", server, "--device=rt_out.monitor", "--raw", "--format=float32le",
                                         "--rate=16000", "--channels=1", "--latency-msec=100"], stdout=sink, env=env)
            time.sleep(1.0)
            subprocess.run(["paplay", "-s", server, f"--device={SPEAKERS}", str(DATA / "ood_noisy.wav")], env=env,
                           check=True, timeout=60)
            time.sleep(1.0)
            listener.send_signal(signal.SIGINT)
            listener.wait(5)
    finally:
        live.send_signal(signal.SIGINT)
        out, err = live.communicate(timeout=30)
    assert live.returncode == 0 and "Traceback" not in err, err
    assert ("speakers: processed" in out) == with_mic and ("microphone: processed" in out) == with_mic, out
    assert _speaker_modules(env) == [] and _modules(env) == []
    return np.fromfile(recording, dtype=np.float32), out, err


@pytest.mark.parametrize("with_mic", [False, True], ids=["speakers", "speakers+mic"])
def test_what_a_program_plays_into_the_virtual_speakers_is_heard_denoised(sound_daemon, tmp_path, with_mic):
    reference = _offline(DATA / "ood_noisy.wav", tmp_path)
    noisy = sf.read(str(DATA / "ood_noisy.wav"), dtype="float32")[0]
    said = []
    for session in range(SESSIONS):
        heard, out, err = _speakers_session(sound_daemon, tmp_path / f"speakers-{session}.raw", with_mic)
        cleaned = _correlation(heard, reference)
        said.append(f"correlation with the offline output {cleaned:.3f}; live said: {out.strip()} {err.strip()}")
        print(f"{sound_daemon.kind}: {said[-1]}")
        if cleaned >= 0.9:
            break
    assert cleaned >= 0.9, " / ".join(said)
    assert cleaned > _correlation(heard, noisy), "what was heard is closer to the noisy file than to the cleaned one"


def _own_default_speakers_session(sound_daemon) -> str:
    """The default output becomes our virtual speakers: what live said (with its threads' stacks if it stayed
    silent about it, as for the microphone), once its streams no longer play into them."""
    env = dict(sound_daemon.env, PYTHONFAULTHANDLER="1")
    sound_daemon.pactl("set-default-sink", "rt_out")
    live, said = _start(env, "--virtual-speaker")
    try:
        sound_daemon.pactl("set-default-sink", SPEAKERS)   # a user (or a desktop) picks ours as the default output
        # a loaded machine may take seconds to move streams: live must first say it saw the change
        said += said_until(live, "the virtual speakers themselves", seconds=20)
        if "the virtual speakers themselves" not in said:
            default = sound_daemon.pactl("get-default-sink").strip()
            return said + threads_of_silent(live, f"the default output {default} for 20 s")
        sinks = {line.split()[1]: line.split()[0] for line in sound_daemon.pactl("list", "short", "sinks").splitlines()}
        for _ in range(20):   # then its streams close
            inputs = sound_daemon.pactl("list", "short", "sink-inputs")
            if not any(line.split()[1] == sinks[SPEAKERS] for line in inputs.splitlines()):
                break
            time.sleep(0.25)
        else:
            raise AssertionError(f"still playing into the virtual speakers themselves: {inputs}\n"
                                 + sound_daemon.pactl("list", "sink-inputs") + "\nlive said:\n" + said)
    finally:
        if live.poll() is None:
            live.send_signal(signal.SIGINT)
            said += live.communicate(timeout=30)[1]
    assert live.returncode == 0, said
    return said


def test_the_virtual_speakers_never_play_into_themselves(sound_daemon):
    """The default output becomes our own speakers: live says so and stops playing into them (no loop)."""
    sessions = []
    for _ in range(OWN_DEFAULT_SESSIONS[sound_daemon.kind]):
        sessions.append(_own_default_speakers_session(sound_daemon))
        if "the virtual speakers themselves" in sessions[-1]:
            break
    assert "the virtual speakers themselves" in sessions[-1], "\n---- next session\n".join(sessions)


NO_SOURCE = str(2**32 - 1)  # pactl's index of a stream that records nothing


def _recordings_of(pid: int, server: str, env: dict) -> dict[str, str]:
    """Process ``pid``'s recording streams: the name of the source each records -> its pactl listing."""
    sources = {line.split()[0]: line.split()[1] for line in
               subprocess.run(["pactl", "-s", server, "list", "short", "sources"], env=env, capture_output=True,
                              text=True).stdout.splitlines()}
    listing = subprocess.run(["pactl", "-s", server, "list", "source-outputs"], env=env, capture_output=True,
                             text=True).stdout
    found = {}
    for block in listing.split("Source Output #")[1:]:
        source = re.search(r"Source: (\d+)", block)
        # 4294967295 (no source): a stream PipeWire is tearing down with the monitor it recorded, not a move
        if f'application.process.id = "{pid}"' in block and source and source.group(1) != NO_SOURCE:
            found[sources.get(source.group(1), source.group(1))] = block
    return found


def test_speakers_unloaded_by_someone_else_never_record_the_microphone_and_come_back(sound_daemon):
    server, env = sound_daemon.server, dict(sound_daemon.env)
    sound_daemon.pactl("set-default-sink", "rt_out")
    sound_daemon.pactl("set-default-source", "rt_in.monitor")   # the real microphone
    if sound_daemon.kind == "PulseAudio":
        sound_daemon.pactl("load-module", "module-rescue-streams")
    live, _ = _start(env, "--virtual-speaker")
    seen: set[str] = set()
    try:
        recordings = _recordings_of(live.pid, server, env)
        assert list(recordings) == [f"{SPEAKERS}.monitor"], recordings
        if sound_daemon.kind == "PipeWire":   # pinned: PipeWire ends it with the monitor instead of moving it
            assert 'node.dont-reconnect = "true"' in recordings[f"{SPEAKERS}.monitor"], recordings
        modules = [line.split()[0] for line in sound_daemon.pactl("list", "short", "modules").splitlines()
                   if SPEAKERS in line]
        subprocess.run(["pactl", "-s", server, "unload-module", modules[0]], env=env, check=True)
        for _ in range(30):
            seen |= set(_recordings_of(live.pid, server, env))
            time.sleep(0.1)
        assert SPEAKERS in sound_daemon.pactl("list", "short", "sinks"), "the virtual speakers were not recreated"
    finally:
        live.send_signal(signal.SIGINT)
        out, err = live.communicate(timeout=30)
    assert live.returncode == 0 and "Traceback" not in err, err
    assert "is back after" in err, err
    assert seen <= {f"{SPEAKERS}.monitor"}, f"the speakers' recording was moved to {seen}"


def test_a_speakers_name_that_is_taken_is_refused(sound_daemon):
    sound_daemon.pactl("load-module", "module-null-sink", f"sink_name={SPEAKERS}")
    result = subprocess.run([sys.executable, "-m", "rtdenoise", "live", "--virtual-speaker", "--name", NAME],
                            env=sound_daemon.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "already has a sink" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_speakers_class_finds_only_its_own_module():
    speakers = VirtualSpeaker("abc")

    class Module:
        def __init__(self, name, argument):
            self.name, self.argument = name, argument

    assert speakers.owns(Module("module-null-sink", "sink_name=abc_speakers channels=2 sink_properties='device."
                                                    "description=\"abc speakers (denoised)\"'"))
    assert not speakers.owns(Module("module-null-sink", "sink_name=abc_speakers"))  # someone else's
    assert not speakers.owns(Module("module-null-sink", "sink_name=abc_denoised_sink"))
    assert not speakers.owns(Module("module-remap-source", "source_name=abc_speakers"))


def _ours(daemon) -> list[str]:
    """Every module of this test's name on the server (microphone, speakers, echo canceller)."""
    return [line for line in daemon.pactl("list", "short", "modules").splitlines() if NAME in line]


def test_both_directions_and_the_echo_canceller_leave_nothing_behind(sound_daemon):
    import os

    env = dict(sound_daemon.env, PULSE_SOURCE="rt_in.monitor")
    sound_daemon.pactl("set-default-sink", "rt_out")
    options = ("--virtual-speaker", "--virtual-mic", "--input", "pulse", "--echo-cancel")
    live, _ = _start(env, *options)
    assert len(_ours(sound_daemon)) == 4   # the microphone's two, the speakers' sink, the canceller
    live.send_signal(signal.SIGTERM)
    live.communicate(timeout=30)
    assert _ours(sound_daemon) == [] and "Default Sink: rt_out" in sound_daemon.pactl("info")
    live, _ = _start(env, *options)
    os.kill(live.pid, signal.SIGKILL)   # no chance to clean up: the modules stay ...
    live.wait(10)
    assert len(_ours(sound_daemon)) == 4
    again, _ = _start(env, *options)       # ... until the next start finds them by name
    try:
        assert len(_ours(sound_daemon)) == 4   # its own four, not eight
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=30)
    assert _ours(sound_daemon) == []
