"""Audio files in and out: reading and writing any format in blocks, the offline denoiser, many files
at once (worker processes, a Ray cluster), the progress bar.

May import the engine, ``rtdenoise.models`` and ``rtdenoise.errors``; never live, bench, the app or the CLI.
"""
