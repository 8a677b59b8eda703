"""The release's version, in one place (the package, ``--version`` and exported files read it)."""
__version__ = "0.1.0"
