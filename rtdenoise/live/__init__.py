"""Live audio: sound devices, the live runner and its rings, autostart at login, and in ``pulse/`` what
talks to the desktop's sound server (the virtual microphone and speakers, the echo canceller, their watch).

May import the engine, files (recordings, file sources), ``rtdenoise.models`` and ``rtdenoise.errors``;
never bench, the app or the CLI. PortAudio (sounddevice) and pulsectl are imported lazily.
"""
