"""The audio a run learns from: the simulated recording chain, synthetic noise, speech without pauses and streams
whose conditions change."""
