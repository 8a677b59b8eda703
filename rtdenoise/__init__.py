"""rtdenoise: streaming, real-time speech denoising.

Public API: :func:`load_model`, :class:`StreamingDenoiser`, :func:`denoise_file`
(imported on first use, so ``import rtdenoise.models`` stays light).
"""
from __future__ import annotations

from pathlib import Path as _Path

# Installed, the networks live in rtdenoise/models (pyproject maps the top-level
# models/ folder there). In a source checkout models/ sits beside this package,
# so let `rtdenoise.models` resolve to it.
_checkout_root = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "models").is_dir() and (_checkout_root / "models" / "__init__.py").is_file():
    __path__.append(str(_checkout_root))  # type: ignore[name-defined]

from .version import __version__
__all__ = ["StreamingDenoiser", "denoise_file", "load_model", "pick_device", "__version__"]


def __getattr__(name: str):
    if name in ("StreamingDenoiser", "load_model", "pick_device"):
        from . import engine

        return getattr(engine, name)
    if name == "denoise_file":
        from .files.offline import denoise_file

        return denoise_file
    raise AttributeError(f"module 'rtdenoise' has no attribute {name!r}")
