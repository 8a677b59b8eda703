"""Private sound servers for the live tests: PulseAudio, and PipeWire with pipewire-pulse (the default
server of current desktops). Each has two null sinks, rt_in (what the "real microphone" hears, as
rt_in.monitor) and rt_out (the "speakers"), and can crash (``kill``), come back (``start``) and stall."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

SINK_FORMAT = "rate=16000 channels=1 format=float32le"


class SoundServer:
    """Common parts: the client environment, waiting for the server, the test sinks."""

    kind = ""

    def __init__(self, runtime: Path) -> None:
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        self.runtime = runtime
        self.daemon: subprocess.Popen | None = None
        self.socket = self._socket()
        self.server = f"unix:{self.socket}"
        self.env = dict(os.environ, PULSE_SERVER=self.server, PULSE_RUNTIME_PATH=str(runtime), HOME=str(runtime),
                        XDG_RUNTIME_DIR=str(runtime))

    def _socket(self) -> Path:
        raise NotImplementedError

    def _wait(self) -> None:
        for _ in range(100):
            if subprocess.run(["pactl", "-s", self.server, "info"], capture_output=True).returncode == 0:
                return
            if self.daemon.poll() is not None:
                pytest.skip(f"{self.kind} could not start: {self.daemon.stderr.read().decode()[-300:]}")
            time.sleep(0.1)
        self.stop()
        pytest.skip(f"{self.kind} did not answer within 10 s")

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", "-s", self.server, *args], env=self.env, capture_output=True, text=True,
                              check=True).stdout

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.daemon.wait(5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.daemon.wait(5)

    def kill(self) -> None:
        """A crash: every client's connection drops."""
        self._signal(signal.SIGKILL)
        self.daemon.wait(5)

    def stall(self, seconds: float) -> None:
        """The server stops answering for ``seconds`` (SIGSTOP, then SIGCONT)."""
        self._signal(signal.SIGSTOP)
        time.sleep(seconds)
        self._signal(signal.SIGCONT)

    def _signal(self, number: int) -> None:
        self.daemon.send_signal(number)


class PulseAudioServer(SoundServer):
    kind = "PulseAudio"

    def _socket(self) -> Path:
        return self.runtime / "native"

    def start(self) -> None:
        env = dict(os.environ, PULSE_RUNTIME_PATH=str(self.runtime), PULSE_STATE_PATH=str(self.runtime),
                   HOME=str(self.runtime))
        self.daemon = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--disallow-exit", "--use-pid-file=no",
             f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             f"--load=module-null-sink sink_name=rt_in {SINK_FORMAT}",
             f"--load=module-null-sink sink_name=rt_out {SINK_FORMAT}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()


class PipeWireServer(SoundServer):
    """pipewire, wireplumber and pipewire-pulse in their own D-Bus session and process group."""

    kind = "PipeWire"

    def _socket(self) -> Path:
        return self.runtime / "pulse" / "native"

    def start(self) -> None:
        env = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime), HOME=str(self.runtime))
        env.pop("PULSE_SERVER", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.daemon = subprocess.Popen(
            ["dbus-run-session", "--", "sh", "-c", "pipewire & sleep 0.3; wireplumber & pipewire-pulse & wait"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self._wait()
        for name in ("rt_in", "rt_out"):  # as a desktop's configuration would bring them back after a restart
            for _ in range(50):  # wireplumber may still be starting
                try:
                    self.pactl("load-module", "module-null-sink", f"sink_name={name}", *SINK_FORMAT.split())
                    break
                except subprocess.CalledProcessError:
                    time.sleep(0.1)
        for _ in range(50):
            if "rt_in.monitor" in self.pactl("list", "short", "sources"):
                return
            time.sleep(0.1)

    def _signal(self, number: int) -> None:
        os.killpg(self.daemon.pid, number)


SERVERS = {"pulseaudio": (PulseAudioServer, "pulseaudio"), "pipewire": (PipeWireServer, "pipewire-pulse")}


def start_server(kind: str, runtime: Path) -> SoundServer:
    cls, program = SERVERS[kind]
    if not shutil.which(program) or not shutil.which("pactl"):
        pytest.skip(f"{program} is not installed (see .ci/run)")
    if kind == "pipewire" and not (shutil.which("wireplumber") and shutil.which("dbus-run-session")):
        pytest.skip("wireplumber and dbus-run-session are needed for PipeWire (see .ci/run)")
    server = cls(runtime)
    server.start()
    return server
