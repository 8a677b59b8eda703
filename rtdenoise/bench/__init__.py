"""``rtdenoise bench``: measured speed and memory of one stream (real-time factor, chunk times, latency)
and of many streams stepped as one batch.

May import the engine, files and ``rtdenoise.models``; never live, the app or the CLI.
"""
