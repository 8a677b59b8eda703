"""--echo-cancel (issue #30): the far end played on the speakers comes back into the microphone through a
"room" (a loopback with a steady delay and attenuation); the virtual microphone's output must have it
20 dB quieter, while a local voice alone keeps its level within 1 dB. On PipeWire, whose canceller finds the echo
and loses it again from session to session, the canceller must hold the echo 30 dB down for a whole second in one
of five sessions (something no microphone without the canceller in the far end's path ever does), and the local
voice keep its level in one of three.

The room's loopback may not be moved: PulseAudio otherwise moves its capture onto the canceller's own
output when the canceller loads, and the far end never reaches the microphone at all."""
from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest

from tests.live_process import start_live
from tests.test_virtual_mic import DATA, NAME, _modules

pytest.importorskip("pulsectl")
pytestmark = [pytest.mark.audio_device, pytest.mark.slow]
RAW = ["--raw", "--format=float32le", "--rate=16000", "--channels=1"]
ROOM_MS = 30  # the echo path's delay beyond the servers' own buffering: the sound card's and the room's
# PipeWire 0.3.65's canceller (Debian 12's) removes 4 to 75 dB of the same room's echo from session to session (41-42
# dB every time on PulseAudio; in the README): it often finds the echo in the first seconds and lets it back after
# 3-10 s, and on a loaded machine it did so in five sessions running (a mean of 11.5 dB at best). It held the echo 30
# dB down for a whole second in 19 of 24 logged sessions, and in 4 of those 5.
PIPEWIRE_SESSIONS = 5
PIPEWIRE_HELD_DB = 30
# ... and now and then it takes 1.4-3 dB off the local voice alone, mostly in a session's last seconds (2 of 20
# runs, one of them in CI; 0.1-0.5 dB in the others): the voice must keep its level in one of three sessions.
PIPEWIRE_VOICE_SESSIONS = 3


def _virtual_mic_levels(daemon, tmp_path, echo_cancel: bool, far_end: bool) -> list[float]:
    """dBFS of the virtual microphone's output second by second (playing starts in the second second), while the
    far end (or a local voice) plays; a session whose room PipeWire took down meanwhile (seen once in 12) says
    nothing and is run again."""
    for _ in range(3):
        levels = _session_levels(daemon, tmp_path, echo_cancel, far_end)
        if levels is not None:
            return levels
    raise AssertionError("the room's loopback vanished in three sessions running")


def _from_4s(levels: list[float]) -> float:
    """The level from 4 s on (the canceller has converged) out of the levels second by second."""
    return float(10 * np.log10(np.mean(10 ** (np.asarray(levels[4:]) / 10))))


def _held_down(echo: float, levels: list[float]) -> float:
    """How far below the echo's level the quietest second with the far end playing was."""
    return echo - min(levels[2:])


def _session_levels(daemon, tmp_path, echo_cancel: bool, far_end: bool) -> list[float] | None:
    """One session of ``_virtual_mic_levels``: None when the room was gone by its end."""
    env = dict(daemon.env, PULSE_SOURCE="rt_in.monitor")   # the microphone hears rt_in
    daemon.pactl("set-default-sink", "rt_out")             # the speakers
    room = daemon.pactl("load-module", "module-loopback", "source=rt_out.monitor", "sink=rt_in",
                        f"latency_msec={ROOM_MS}", "source_dont_move=true", "sink_dont_move=true").strip()
    # the speakers heard by the microphone ROOM_MS later (measured end to end: 36 ms on both servers)
    daemon.pactl("set-sink-volume", "rt_in", "40%")   # about -24 dB: the room's attenuation (and the local voice's)
    live, _ = start_live(env, "--input", "pulse", "--virtual-mic", "--name", NAME, "--latency", "high", "--prime-ms",
                         "0", *(["--echo-cancel"] if echo_cancel else []))
    recording = tmp_path / f"mic-{echo_cancel}-{far_end}.raw"
    try:
        with open(recording, "wb") as sink:
            recorder = subprocess.Popen(["parec", "-s", daemon.server, f"--device={NAME}", *RAW,
                                         "--latency-msec=100"], stdout=sink, env=env)
            time.sleep(1.0)
            # the far end plays to the default output (the echo canceller's reference while it runs); the local
            # voice is played straight into the microphone
            target = [] if far_end else ["--device=rt_in"]
            for _ in range(3):
                subprocess.run(["paplay", "-s", daemon.server, *target, str(DATA / "speech_clean.wav")], env=env,
                               check=True, timeout=30)
            recorder.send_signal(signal.SIGINT)
            recorder.wait(5)
    finally:
        live.send_signal(signal.SIGINT)
        out, err = live.communicate(timeout=30)
        room_kept = room in [line.split()[0] for line in daemon.pactl("list", "short", "modules").splitlines()
                             if line.strip()]
        if room_kept:
            daemon.pactl("unload-module", room)
    assert live.returncode == 0 and "Traceback" not in err, err
    if not room_kept:
        print(f"{daemon.kind}: the room's loopback vanished during the session; it is run again")
        return None
    heard = np.fromfile(recording, dtype=np.float32)
    assert len(heard) > 16000 * 12, len(heard)
    per_second = [10 * np.log10(np.mean(second ** 2) + 1e-12) for second in heard[:len(heard) // 16000 * 16000]
                  .reshape(-1, 16000)]
    print(f"{daemon.kind}, echo canceller {'on' if echo_cancel else 'off'}, {'far end' if far_end else 'local voice'}:"
          " dBFS per second " + " ".join(f"{level:.0f}" for level in per_second))
    return [float(level) for level in per_second]


def test_echo_cancel_removes_the_far_end_and_keeps_the_local_voice(sound_daemon, tmp_path):
    echo = _from_4s(_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=False, far_end=True))
    assert echo > -70, f"the room's echo is too quiet to measure ({echo:.1f} dBFS)"
    sessions = [_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=True, far_end=True)]
    if sound_daemon.kind == "PipeWire":
        while len(sessions) < PIPEWIRE_SESSIONS and _held_down(echo, sessions[-1]) < PIPEWIRE_HELD_DB:
            sessions.append(_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=True, far_end=True))
    voice = _from_4s(_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=False, far_end=False))
    voice_cancelled = _from_4s(_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=True, far_end=False))
    for _ in range(PIPEWIRE_VOICE_SESSIONS - 1 if sound_daemon.kind == "PipeWire" else 0):
        if abs(voice - voice_cancelled) < 1:
            break
        again = _from_4s(_virtual_mic_levels(sound_daemon, tmp_path, echo_cancel=True, far_end=False))
        voice_cancelled = min(voice_cancelled, again, key=lambda level: abs(voice - level))
    cancelled = [_from_4s(levels) for levels in sessions]
    held = [_held_down(echo, levels) for levels in sessions]
    print(f"{sound_daemon.kind}: echo {echo:.1f} -> " + ", ".join(f"{level:.1f}" for level in cancelled)
          + " dB (held down by " + ", ".join(f"{level:.0f}" for level in held) + f" dB for a second); local voice"
          f" {voice:.1f} -> {voice_cancelled:.1f} dB")
    if sound_daemon.kind == "PipeWire":
        assert max(held) >= PIPEWIRE_HELD_DB, f"the echo was never held {PIPEWIRE_HELD_DB} dB down for a second"
    else:
        assert echo - cancelled[0] >= 20, f"the echo fell by {echo - cancelled[0]:.1f} dB only"
    assert abs(voice - voice_cancelled) < 1, f"the local voice changed by {voice_cancelled - voice:+.1f} dB"
    env = sound_daemon.env
    assert _modules(env) == [] and "module-echo-cancel" not in sound_daemon.pactl("list", "short", "modules")
    assert "rt_out" in sound_daemon.pactl("info")   # the default output came back


def test_echo_cancel_needs_the_virtual_microphone(capsys):
    from rtdenoise.cli import main

    assert main(["live", "--echo-cancel", "--no-output", "--file", str(DATA / "ood_noisy.wav")]) == 2
    assert "--virtual-mic" in capsys.readouterr().err
