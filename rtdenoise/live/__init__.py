"""Live audio: sound devices, the live runner and its rings, and what talks to the desktop's sound
server (the virtual microphone, autostart at login).

May import the engine, files (recordings, file sources), ``rtdenoise.models`` and ``rtdenoise.errors``;
never bench, the app or the CLI. PortAudio (sounddevice) and pulsectl are imported lazily.
"""
