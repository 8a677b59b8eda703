"""The delay a live session adds, in words, for the CLI's opening line and the app's status bar."""
from __future__ import annotations


def delay_parts(stats: dict) -> str:
    """The delay a sample meets, part by part (from ``LiveRunner.stats``): the model's, the devices' buffers and
    the output's cushion (the silence it starts with, when it plays)."""
    cushion = f" + {stats['cushion_ms']:.0f} ms output cushion" if stats["cushion_ms"] else ""
    return f"{stats['latency_ms']:.0f} ms + {stats['device_latency_ms']:.0f} ms device buffers{cushion}"
