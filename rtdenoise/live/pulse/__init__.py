"""The live path's sound-server side (PulseAudio, and PipeWire through pipewire-pulse; via pulsectl): the
virtual microphone, the virtual speakers, the echo canceller, and the watch that keeps them and their live
runner in step with the server (sleep while unused, recreate after a restart or an unload)."""
